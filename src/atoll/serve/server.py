"""Running the app: uvicorn with our socket options, worker processes, graceful drain.

Why not uvicorn's own ``--workers``: its children build a plain ``Server``,
so they could not drain before stopping, and with several workers it leaves
Nagle's algorithm on (uvicorn #3149: every keep-alive request then waits
~40 ms for a delayed ACK). Here every accepted socket gets ``TCP_NODELAY``,
each worker is a spawned process that builds its own app from the same
:class:`AppOptions`, and SIGTERM drains: ``/readyz`` turns 503 at once, the
worker keeps serving for ``drain_s`` (load balancers take time to notice),
then stops accepting, finishes in-flight requests, and flushes the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from atoll.spec_serve import LimitsSpec

from .http_protocol import http_protocol

log = logging.getLogger("atoll.serve")

GRACE_S = 20.0
"""In-flight requests get this long to finish once a worker stops accepting."""


@dataclass
class Lifecycle:
    """Shared by a worker's server and its app: whether the worker is draining."""

    draining: bool = False
    listeners: list[Callable[[], None]] = field(default_factory=list)

    def drain(self) -> None:
        if not self.draining:
            self.draining = True
            for listener in self.listeners:
                listener()


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose first SIGTERM/SIGINT drains before it stops."""

    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle, drain_s: float) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle
        self.drain_s = drain_s

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            # uvicorn re-raises the caught signal after shutting down; a drained
            # stop is a clean exit (status 0), not death by SIGTERM.
            self._captured_signals.clear()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.lifecycle.draining or self.drain_s <= 0:
            if self.lifecycle.draining and self.should_exit:
                self.force_exit = True
            self.lifecycle.drain()
            super().handle_exit(sig, frame)
            return
        self.lifecycle.drain()
        log.info("draining for %.1f s before stopping", self.drain_s)
        loop = asyncio.get_event_loop()
        loop.call_soon_threadsafe(loop.call_later, self.drain_s, super().handle_exit, sig, frame)


def uvicorn_config(app: Any, limits: LimitsSpec) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http=http_protocol(limits.max_header_bytes, limits.max_header_count),
        lifespan="on",
        access_log=False,  # our middleware writes structured access lines
        proxy_headers=False,  # X-Forwarded-For from anyone must not pick the rate-limit address
        server_header=False,
        date_header=True,
        timeout_keep_alive=int(limits.keepalive_s),
        limit_concurrency=limits.max_connections,
        timeout_graceful_shutdown=int(GRACE_S),
        log_config=None,
    )


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, shared by every worker process."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def supervise(
    target: Callable[..., None], args: tuple[Any, ...], sock: socket.socket, workers: int
) -> int:
    """Run ``workers`` spawned processes on one socket until SIGTERM/SIGINT; restart crashes."""
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> multiprocessing.process.BaseProcess:
        process = context.Process(target=target, args=(*args, sock), daemon=False)
        process.start()
        return process

    def stop(sig: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.pid is not None and process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, sig)

    processes = [start() for _ in range(workers)]
    restarts = [_Restarts() for _ in range(workers)]
    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stopping:
            for i, process in enumerate(processes):
                slot = restarts[i]
                slot.wait(process, 0.5 / workers)
                if stopping or process.is_alive():
                    continue
                if process.exitcode == STARTUP_FAILURE:  # would fail the same way again
                    stop(signal.SIGTERM, None)
                    break
                if slot.restart_due(process):
                    processes[i] = start()
                    slot.started()
        for process in processes:
            process.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return next((_status(p.exitcode) for p in processes if p.exitcode), 0)


RESTART_DELAYS_S = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0)
"""The wait before a worker's restart after its 1st, 2nd, ... exit in a row soon after starting."""
STABLE_S = 30.0
"""A worker that ran this long before exiting is restarted at once, its failures forgotten."""


@dataclass
class _Restarts:
    """One worker slot's restart schedule: at once after a crash, backing off when it loops.

    A worker failing the same way at each start (an error before its app starts:
    a failed import, a broken environment) would otherwise be started again about
    three times a second, forever, filling the log. A failure of the app's own
    startup exits with uvicorn's STARTUP_FAILURE and stops the server instead.
    """

    started_at: float = field(default_factory=time.monotonic)
    failures: int = 0
    due: float | None = None

    def wait(self, process: multiprocessing.process.BaseProcess, timeout: float) -> None:
        """Up to ``timeout``: for the worker to exit, or for its restart to be due."""
        if self.due is None:
            process.join(timeout)
        else:
            time.sleep(max(0.0, min(timeout, self.due - time.monotonic())))

    def restart_due(self, process: multiprocessing.process.BaseProcess) -> bool:
        """Whether to start the exited worker's successor now (its wait is set on first ask)."""
        if self.due is None:
            now = time.monotonic()
            self.failures = self.failures + 1 if now - self.started_at < STABLE_S else 0
            last = len(RESTART_DELAYS_S) - 1
            delay = RESTART_DELAYS_S[min(self.failures - 1, last)] if self.failures else 0.0
            self.due = now + delay
            log.warning(
                "worker %s exited (%s); starting another%s",
                process.pid,
                process.exitcode,
                f" in {delay:.0f} s (it keeps failing)" if delay else "",
            )
        return time.monotonic() >= self.due

    def started(self) -> None:
        self.started_at, self.due = time.monotonic(), None


def _status(exitcode: int | None) -> int:
    """A process's exit code as a shell shows it (128 + N for death by signal N)."""
    code = exitcode or 0
    return 128 - code if code < 0 else code


def exit_with_parent(poll_s: float = 1.0) -> None:
    """Stop this worker (gracefully) if its supervisor dies, even by kill -9.

    Otherwise orphaned workers would keep the port and answer ready forever.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        log.warning("the supervisor (pid %d) is gone; stopping", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="atoll-parent-watch", daemon=True).start()
