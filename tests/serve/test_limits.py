"""The hardening middleware over a real socket: body caps, slow bodies, load shedding, headers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from atoll.errors import AtollError
from atoll.serve.errors import problem_for
from atoll.serve.limits import (
    REQUEST_ID_STATE,
    HardeningMiddleware,
    LimitSettings,
    harden,
    harden_from_spec,
)
from atoll.spec_serve import ServeSpec

from .conftest import ServeInThread

LOG_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00"
SECURITY = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}
HEX_ID = re.compile(r"[0-9a-f]{32}")
Clients = list[httpx.Client]
SMALL = LimitSettings(max_body_bytes=2048, max_other_body_bytes=1024, body_timeout_s=1.0)


class Gate:
    """Holds /hold requests until released (thread-safe: the server runs in another thread)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()


def problem_response(request: Request, error: Exception) -> Response:
    problem = problem_for(error)
    request_id = request.scope.get("state", {}).get(REQUEST_ID_STATE, "")
    return JSONResponse(problem.body(request_id), problem.status, headers=problem.headers)


def make_app(gate: Gate | None = None, *, handlers: bool = True) -> Starlette:
    async def echo(request: Request) -> Response:
        body = await request.body()
        return JSONResponse({"bytes": len(body)})

    async def ping(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def hold(request: Request) -> Response:
        assert gate is not None
        gate.entered.set()
        while not gate.released.is_set():
            await asyncio.sleep(0.01)
        return PlainTextResponse("held")

    async def boom(request: Request) -> Response:
        raise RuntimeError("boom")

    async def docs(request: Request) -> Response:
        return HTMLResponse("<html><body>docs</body></html>")

    async def cached(request: Request) -> Response:
        return PlainTextResponse("x", headers={"Cache-Control": "max-age=60"})

    async def request_id(request: Request) -> Response:
        return JSONResponse({"request_id": request.state.request_id})

    async def keyed(request: Request) -> Response:
        request.state.key_id = "0123456789ab"
        return PlainTextResponse("ok")

    routes = [
        Route("/v1/models/{name}/predict", echo, methods=["POST"]),
        Route("/v1/feedback", echo, methods=["POST"]),
        Route("/ping", ping),
        Route("/healthz", ping),
        Route("/work", ping),
        Route("/hold", hold),
        Route("/boom", boom),
        Route("/docs", docs),
        Route("/cached", cached),
        Route("/rid", request_id),
        Route("/keyed", keyed),
    ]
    return Starlette(
        routes=routes, exception_handlers={AtollError: problem_response} if handlers else {}
    )


@pytest.fixture
def http() -> Iterator[Clients]:
    clients: list[httpx.Client] = []
    yield clients
    for client in clients:
        client.close()


def client(base_url: str, opened: list[httpx.Client]) -> httpx.Client:
    made = httpx.Client(base_url=base_url, timeout=10.0)
    opened.append(made)
    return made


def assert_hardened(response: httpx.Response) -> None:
    for name, value in SECURITY.items():
        assert response.headers.get(name) == value, (response.status_code, name)
    assert response.headers.get("x-request-id")


def test_content_length_over_the_route_limit_is_413(
    serve_in_thread: ServeInThread, http: Clients
) -> None:
    web = client(serve_in_thread(HardeningMiddleware(make_app(), SMALL)), http)

    assert web.post("/v1/models/m/predict", content=b"x" * 2048).json() == {"bytes": 2048}
    refused = web.post("/v1/models/m/predict", content=b"x" * 2049)
    assert refused.status_code == 413
    error = refused.json()["error"]
    assert error["code"] == "payload_too_large"
    assert "2048" in error["message"] and "serve.limits.max_body_bytes" in error["message"]
    assert error["request_id"] == refused.headers["x-request-id"]
    assert refused.headers["connection"] == "close"
    assert_hardened(refused)

    assert web.post("/v1/feedback", content=b"x" * 1024).status_code == 200
    other = web.post("/v1/feedback", content=b"x" * 1025)
    assert other.status_code == 413
    assert "serve.limits.max_other_body_bytes" in other.json()["error"]["message"]


def chunks(total: int, size: int = 100) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b"y" * piece


@pytest.mark.parametrize("handlers", [True, False], ids=["app-handles", "bare-app"])
def test_chunked_body_is_counted_as_received(
    serve_in_thread: ServeInThread,
    http: Clients,
    handlers: bool,
) -> None:
    web = client(serve_in_thread(HardeningMiddleware(make_app(handlers=handlers), SMALL)), http)

    fits = web.post("/v1/models/m/predict", content=chunks(2048))
    assert fits.status_code == 200 and fits.json() == {"bytes": 2048}
    refused = web.post("/v1/models/m/predict", content=chunks(3000))
    assert refused.status_code == 413
    assert refused.json()["error"]["code"] == "payload_too_large"
    assert_hardened(refused)


def send_slowly(base_url: str, web: httpx.Client, *, total: int = 100) -> bytes:
    """Trickle a body one byte per 0.2 s; check others are served meanwhile; return the answer."""
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), timeout=10.0) as sock:
        sock.sendall(
            b"POST /v1/models/m/predict HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % total
        )
        answer = b""
        sock.settimeout(0.2)
        for sent in range(total):  # 20 s if never cut off: far past the 1 s deadline
            try:
                sock.sendall(b"1")
            except OSError:
                break
            if sent == 2:
                assert web.get("/work").status_code == 200
            try:
                answer = sock.recv(65536)
            except TimeoutError:
                continue
            break
        sock.settimeout(10.0)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
    return answer


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
@pytest.mark.parametrize("handlers", [True, False], ids=["app-handles", "bare-app"])
def test_slow_body_gets_408_and_close_while_others_are_served(
    serve_in_thread: ServeInThread,
    http: Clients,
    loop: str,
    handlers: bool,
) -> None:
    middleware = HardeningMiddleware(make_app(handlers=handlers), SMALL)
    base_url = serve_in_thread(middleware, loop=loop)
    web = client(base_url, http)

    answer = send_slowly(base_url, web)

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"connection: close" in head.lower()
    assert b"x-content-type-options: nosniff" in head.lower()
    error = json.loads(body)["error"]
    assert error["code"] == "request_timeout"
    assert "serve.limits.body_timeout_s" in error["message"]
    # the socket was closed by the server (the read loop ended): the slot is free again
    assert web.get("/work").status_code == 200
    deadline = time.monotonic() + 10.0  # the app unwinds just after the answer is sent
    while middleware.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert middleware.in_flight == 0


def test_in_flight_cap_gives_503_with_retry_after(
    serve_in_thread: ServeInThread, http: Clients
) -> None:
    gate = Gate()
    settings = LimitSettings(max_in_flight=1)
    base_url = serve_in_thread(HardeningMiddleware(make_app(gate), settings))
    web = client(base_url, http)
    held: list[httpx.Response] = []
    holder = threading.Thread(target=lambda: held.append(client(base_url, http).get("/hold")))
    holder.start()
    try:
        assert gate.entered.wait(10.0)
        refused = web.get("/work")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "overloaded"
        assert_hardened(refused)
        assert web.get("/healthz").status_code == 200  # probes are never shed
    finally:
        gate.released.set()
        holder.join(10.0)
    assert held[0].status_code == 200
    assert web.get("/work").status_code == 200


def test_security_headers_on_every_answer(serve_in_thread: ServeInThread, http: Clients) -> None:
    base_url = serve_in_thread(HardeningMiddleware(make_app(), SMALL))
    web = client(base_url, http)

    answers = [
        web.get("/ping"),
        web.get("/nowhere"),
        web.post("/ping"),
        web.post("/v1/feedback", content=b"x" * 5000),
        # uvicorn closes the connection after an app exception: use one of its own
        client(base_url, http).get("/boom"),
    ]

    assert [r.status_code for r in answers] == [200, 404, 405, 413, 500]
    for response in answers:
        assert_hardened(response)
    assert "boom" not in answers[-1].text
    docs = web.get("/docs")
    assert docs.headers["content-security-policy"].startswith("default-src 'self'")
    assert docs.headers["x-frame-options"] == "DENY"
    cached = web.get("/cached")
    assert cached.headers.get_list("cache-control") == ["max-age=60"]  # the route's own wins


def test_request_id_is_echoed_when_valid_else_generated(
    serve_in_thread: ServeInThread, http: Clients
) -> None:
    web = client(serve_in_thread(HardeningMiddleware(make_app(), SMALL)), http)

    given = web.get("/rid", headers={"X-Request-ID": "abc-123.X_y"})
    assert given.headers["x-request-id"] == "abc-123.X_y"
    assert given.json() == {"request_id": "abc-123.X_y"}
    for bad in ("bad id!", "x" * 65, "", "é"):
        replaced = web.get("/rid", headers={b"X-Request-ID": bad.encode()})
        assert HEX_ID.fullmatch(replaced.headers["x-request-id"]), bad
        assert replaced.json() == {"request_id": replaced.headers["x-request-id"]}
    first, second = web.get("/rid"), web.get("/rid")
    assert HEX_ID.fullmatch(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    error = web.get("/nowhere", headers={"X-Request-ID": "trace-42"})
    assert error.headers["x-request-id"] == "trace-42"


def access_entries(caplog: pytest.LogCaptureFixture, count: int) -> list[dict[str, object]]:
    """The access log is written after the answer is sent: wait for it."""
    deadline = time.monotonic() + 10.0
    while True:
        records = [r for r in caplog.records if r.name == "atoll.access"]
        if len(records) >= count or time.monotonic() > deadline:
            return [json.loads(r.getMessage()) for r in records]
        time.sleep(0.01)


def test_access_log_has_one_json_line_per_request_and_never_the_key(
    serve_in_thread: ServeInThread,
    http: Clients,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="atoll.access")
    secret = "atoll_0123456789ab_" + "s" * 43
    web = client(serve_in_thread(HardeningMiddleware(make_app(), SMALL)), http)

    before = datetime.now(UTC) - timedelta(milliseconds=1)
    web.get("/keyed", headers={"Authorization": f"Bearer {secret}", "X-Request-ID": "log-1"})
    web.post("/v1/models/credit/predict", content=b'{"secret": 1}', headers={"X-API-Key": secret})
    after = datetime.now(UTC) + timedelta(milliseconds=1)

    keyed, predicted = access_entries(caplog, 2)[-2:]
    assert keyed["request_id"] == "log-1"
    assert keyed["method"] == "GET" and keyed["path"] == "/keyed" and keyed["status"] == 200
    assert keyed["key_id"] == "0123456789ab"
    assert isinstance(keyed["duration_ms"], float) and keyed["duration_ms"] >= 0
    assert isinstance(keyed["time"], str) and re.fullmatch(LOG_TIME, keyed["time"])
    assert before <= datetime.fromisoformat(keyed["time"]) <= after
    assert predicted["route"] == "/v1/models/{name}/predict"
    assert predicted["path"] == "/v1/models/credit/predict"
    assert "key_id" not in predicted
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert "secret" not in record.getMessage()


def test_cors_only_when_origins_are_configured(
    serve_in_thread: ServeInThread, http: Clients
) -> None:
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    closed = client(serve_in_thread(harden(make_app(), SMALL)), http)
    assert "access-control-allow-origin" not in closed.options("/ping", headers=preflight).headers
    assert "access-control-allow-origin" not in closed.get("/ping", headers=preflight).headers

    opened = client(
        serve_in_thread(harden(make_app(), SMALL, cors_origins=["https://app.example"])), http
    )
    answer = opened.options("/v1/feedback", headers=preflight)
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "https://app.example"
    assert_hardened(answer)
    evil = opened.options("/v1/feedback", headers={**preflight, "Origin": "https://evil.example"})
    assert evil.status_code == 400


def test_settings_come_from_the_serve_spec() -> None:
    spec = ServeSpec.model_validate(
        {
            "cors_origins": ["https://app.example"],
            "limits": {"max_body_bytes": 4096, "body_timeout_s": 2, "max_in_flight": 7},
        }
    )
    layer = harden_from_spec(make_app(), spec)
    assert layer.settings.max_body_bytes == 4096
    assert layer.settings.max_other_body_bytes == 1024 * 1024
    assert layer.settings.body_timeout_s == 2
    assert layer.settings.max_in_flight == 7
    assert layer.settings.body_limit("/v2/models/m/versions/3/infer") == (
        4096,
        "serve.limits.max_body_bytes",
    )
    assert layer.settings.body_limit("/invocations")[0] == 4096
    assert layer.settings.body_limit("/v1/feedback")[0] == 1024 * 1024
    assert type(layer.app).__name__ == "CORSMiddleware"
