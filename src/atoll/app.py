"""Compose and run the ASGI app: the Python twin of ``atoll serve``.

The web UI and the scheduler will attach here; today it is the serving app.
Worker processes rebuild the same app from a small JSON payload, so every
worker reads the same project, spec and environment as the parent.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atoll.api import open_registry, project_settings
from atoll.errors import AtollError
from atoll.serve.access_log import ACCESS_LOGGER, BufferedLines
from atoll.spec import SPEC_FILE, load_project_options
from atoll.types import ModelRef

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


@dataclass(frozen=True)
class ServeRequest:
    """What ``atoll serve`` was asked to do; sent to each worker as JSON."""

    project_dir: str
    refs: tuple[str, ...] = ()
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 1
    auth: bool | None = None  # None: as the spec says (on by default)

    def to_json(self) -> str:
        return json.dumps({**self.__dict__, "refs": list(self.refs)})

    @classmethod
    def from_json(cls, text: str) -> ServeRequest:
        data = json.loads(text)
        return cls(**{**data, "refs": tuple(data["refs"])})


def app_options(request: ServeRequest) -> Any:
    """The worker's :class:`atoll.serve.app.AppOptions`, from the project and the request."""
    from atoll.serve.app import AppOptions

    root = Path(request.project_dir)
    options = load_project_options(root / SPEC_FILE)
    serve = options.serve
    if request.auth is not None:
        serve = serve.model_copy(update={"auth": request.auth})
    return AppOptions(
        settings=project_settings(root),
        refs=request.refs,
        serve=serve,
        log=options.monitor.log,
        workers=request.workers,
    )


def check_request(request: ServeRequest) -> list[str]:
    """Refuse unsafe or impossible requests before any worker starts; the served references.

    Raises:
        AtollError: auth off on a non-loopback address, a bad worker count, or a
            reference that does not resolve (each named).
    """
    options = app_options(request)
    if not options.serve.auth and not _is_loopback(request.host):
        raise AtollError(
            f"refusing to serve on {request.host} with auth disabled: "
            "bind to 127.0.0.1, or turn auth on"
        )
    if not 1 <= request.workers <= 64:
        raise AtollError(f"--workers must be between 1 and 64, not {request.workers}")
    with open_registry(options.settings) as registry:
        if request.refs:
            return [str(registry.get_version(ModelRef.parse(r)).name) for r in request.refs]
        return [m.name for m in registry.list_models() if "production" in m.aliases]


def serve(request: ServeRequest) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit status."""
    from atoll.serve.server import bind, supervise

    check_request(request)
    configure_logging()
    sock = bind(request.host, request.port)
    if request.workers == 1:
        run_worker(request.to_json(), sock)
        return 0
    from atoll.serve.metrics import prepare_multiprocess_dir

    metrics_dir = Path(tempfile.mkdtemp(prefix="atoll-metrics-"))
    prepare_multiprocess_dir(metrics_dir)
    try:
        return supervise(run_supervised_worker, (request.to_json(),), sock, request.workers)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def run_worker(payload: str, sock: Any) -> None:
    """One worker process: build the app, serve on the shared socket until told to stop."""
    from atoll.serve.app import create_app
    from atoll.serve.server import DrainingServer, Lifecycle, uvicorn_config

    configure_logging()
    options = app_options(ServeRequest.from_json(payload))
    lifecycle = Lifecycle()
    app = create_app(options, lifecycle)
    config = uvicorn_config(app, options.serve.limits)
    DrainingServer(config, lifecycle, options.serve.drain_s).run(sockets=[sock])


def run_supervised_worker(payload: str, sock: Any) -> None:
    """A worker under ``supervise``: it also stops when the supervisor dies."""
    from atoll.serve.server import exit_with_parent

    exit_with_parent()
    run_worker(payload, sock)


def configure_logging() -> None:
    """Plain lines on stderr; access lines are JSON already (one object per line)."""
    if logging.getLogger().handlers:
        return
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    # No format here uses the thread or process name: skip looking them up for every record
    # (the access log writes one record per request).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    access = logging.getLogger(ACCESS_LOGGER)
    access.addHandler(BufferedLines(sys.stderr))
    access.propagate = False


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
