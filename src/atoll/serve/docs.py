"""Interactive API docs at ``/docs``: Swagger UI served from files shipped with atoll, never a CDN.

The page loads nothing from another host and runs no inline script, so it
works offline and under ``Content-Security-Policy: default-src 'self'``: the
initializer is a small file of ours, served beside Swagger UI's own files and
reading the document's URL from a ``data-`` attribute. Files are picked from
an allow-list by name (a name from the URL never reaches the file system),
read once, and sent with a one-year cache, an ETag and gzip when accepted.

Swagger UI renders OpenAPI 3.1 from version 5 on. Its five files the page
needs are vendored in ``atoll/serve/swagger_ui`` (see its ``README.md``: the
release, its checksums and how to update it), the two large ones gzipped, so
they cost half a megabyte of the install instead of a 25 MB package.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import threading
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from .errors import NotFound

DOCS_PATH = "/docs"
OPENAPI_PATH = "/openapi.json"
INIT_FILE = "atoll-docs.js"
CACHE_FOREVER = "public, max-age=31536000, immutable"

JS = "text/javascript; charset=utf-8"
CSS = "text/css; charset=utf-8"
PNG = "image/png"

VENDOR_FILES = {
    "swagger-ui-bundle.js": JS,
    "swagger-ui.css": CSS,
    "index.css": CSS,
    "favicon-32x32.png": PNG,
    "favicon-16x16.png": PNG,
}
"""Swagger UI's files the page needs, by name; nothing else in its folder is served."""

STATIC_FILES = {**VENDOR_FILES, INIT_FILE: JS}
"""Every file under ``/docs/static/``."""

_INIT_JS = b"""\
"use strict";
// Starts Swagger UI on the page's #swagger-ui element (no inline script: CSP).
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null,
    persistAuthorization: false,
    displayRequestDuration: true,
    tryItOutEnabled: false
  });
});
"""

VENDORED = Path(__file__).with_name("swagger_ui")
"""Swagger UI's files, as shipped: each as itself, or gzipped with a ``.gz`` suffix."""

_COMPRESSIBLE = (JS, CSS)


@dataclass(frozen=True)
class Asset:
    """One file, ready to send."""

    body: bytes
    gzipped: bytes | None
    content_type: str
    digest: str

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'


def vendored_file(name: str) -> tuple[bytes, bytes | None]:
    """One of Swagger UI's files: its bytes, and its gzipped bytes where it is shipped so."""
    zipped = VENDORED / f"{name}.gz"
    if zipped.is_file():
        gzipped = zipped.read_bytes()
        return gzip.decompress(gzipped), gzipped
    return (VENDORED / name).read_bytes(), None


class _Assets:
    """Every file read (and compressed) once, on first use, from one thread at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[str, Asset] | None = None

    def get(self) -> dict[str, Asset]:
        with self._lock:
            if self._loaded is None:
                files = {name: vendored_file(name) for name in VENDOR_FILES}
                files[INIT_FILE] = (_INIT_JS, None)
                self._loaded = {
                    name: _asset(body, zipped, STATIC_FILES[name])
                    for name, (body, zipped) in files.items()
                }
            return self._loaded


def _asset(body: bytes, zipped: bytes | None, content_type: str) -> Asset:
    if zipped is None and content_type in _COMPRESSIBLE:
        zipped = gzip.compress(body, 6, mtime=0)
    return Asset(body, zipped, content_type, hashlib.sha256(body).hexdigest()[:32])


def docs_routes(openapi_url: str = OPENAPI_PATH, title: str = "atoll API") -> list[BaseRoute]:
    """``GET /docs`` (the page) and ``GET /docs/static/{file}`` (its allow-listed files)."""
    assets = _Assets()

    def page(request: Request) -> Response:
        return HTMLResponse(_page(assets.get(), openapi_url, title))

    def static(request: Request) -> Response:
        asset = assets.get().get(request.path_params["file"])
        if asset is None:
            raise NotFound("no such file under /docs/static")
        return _send(asset, request)

    return [
        Route(DOCS_PATH, page, methods=["GET"]),
        Route(DOCS_PATH + "/static/{file}", static, methods=["GET"]),
    ]


def _page(assets: dict[str, Asset], openapi_url: str, title: str) -> str:
    def url(name: str) -> str:  # the content hash in the query string busts old caches
        return html.escape(f"{DOCS_PATH}/static/{name}?v={assets[name].digest[:12]}")

    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="{url("swagger-ui.css")}">
<link rel="stylesheet" href="{url("index.css")}">
<link rel="icon" type="image/png" sizes="32x32" href="{url("favicon-32x32.png")}">
<link rel="icon" type="image/png" sizes="16x16" href="{url("favicon-16x16.png")}">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{html.escape(openapi_url)}"></div>
<script src="{url("swagger-ui-bundle.js")}"></script>
<script src="{url(INIT_FILE)}"></script>
</body>
</html>
"""


def _send(asset: Asset, request: Request) -> Response:
    headers = {"Cache-Control": CACHE_FOREVER, "ETag": asset.etag}
    if asset.gzipped is not None:
        headers["Vary"] = "Accept-Encoding"
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    body = asset.body
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, headers=headers, media_type=asset.content_type)


__all__ = [
    "DOCS_PATH",
    "INIT_FILE",
    "OPENAPI_PATH",
    "STATIC_FILES",
    "VENDOR_FILES",
    "Asset",
    "docs_routes",
    "vendored_file",
]
