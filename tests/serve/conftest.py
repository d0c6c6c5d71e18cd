"""Fixtures of the serving tests: a real uvicorn server on a real socket, in a thread."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from atoll.store.db import create_engine_for, migrate
from atoll.store.keys import KeyStore

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0

ServeInThread = Callable[..., str]
"""``serve_in_thread(app, **uvicorn_kwargs) -> base_url``; stopped when the test ends."""


@contextlib.contextmanager
def running_server(app: ASGIApp, **uvicorn_kwargs: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free 127.0.0.1 port in a thread; yield its base URL.

    The socket is bound here (port 0) and handed to uvicorn, so no other
    process can take the port between choosing and binding it. Defaults:
    uvloop + httptools (what ``atoll serve`` runs), no uvicorn access log,
    a 5 s graceful shutdown; any ``uvicorn.Config`` argument overrides them.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options: dict[str, Any] = {
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "auto",
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 5,
        **uvicorn_kwargs,
    }
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))
    failures: list[BaseException] = []

    def serve() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as error:  # reported by the waiting test
            failures.append(error)

    thread = threading.Thread(target=serve, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_answering(server, thread, base_url, failures)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT_S)
        if thread.is_alive():
            server.force_exit = True
            thread.join(STOP_TIMEOUT_S)
        sock.close()
    assert not thread.is_alive(), "the server thread did not stop"


def _wait_until_answering(
    server: uvicorn.Server, thread: threading.Thread, base_url: str, failures: list[BaseException]
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if not thread.is_alive():
            raise RuntimeError(f"the server stopped while starting: {failures!r}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not answer within {START_TIMEOUT_S} s")
        if server.started:
            try:
                httpx.get(f"{base_url}/", timeout=5.0)  # any status: it answers
            except httpx.TransportError:
                pass
            else:
                return
        time.sleep(0.01)


@pytest.fixture
def serve_in_thread() -> Iterator[ServeInThread]:
    """Start servers with ``serve_in_thread(app, **uvicorn_kwargs)``; all stop at teardown."""
    with contextlib.ExitStack() as stack:

        def start(app: ASGIApp, **uvicorn_kwargs: Any) -> str:
            return stack.enter_context(running_server(app, **uvicorn_kwargs))

        yield start


@pytest.fixture
def key_store(sqlite_url: str) -> Iterator[KeyStore]:
    """A real key store on a migrated SQLite file."""
    engine = create_engine_for(sqlite_url)
    migrate(engine)
    yield KeyStore(engine, actor="test")
    engine.dispose()
