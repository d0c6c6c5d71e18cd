"""The local engine: worker processes on this machine, each with a pipe of its own.

Not ``ProcessPoolExecutor``: its workers answer through one shared queue, and
a worker killed while writing to it leaves the parent waiting forever for
the rest of a half-written message. Here each worker's pipe has one writer,
the worker itself, so its death is end-of-file at once, and the parent knows
exactly which task it held: that task goes again to a fresh worker; dying a
second time fails the job. Workers start fresh (``forkserver``, else
``spawn``), pin numeric libraries to one thread, and ignore Ctrl-C, which the
parent handles.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from atoll.batch.engines import WorkerLost, windowed
from atoll.errors import AtollError

C = TypeVar("C")
T = TypeVar("T")
R = TypeVar("R")

SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
}
"""Numeric libraries read these when they load: one thread each in a worker process."""

PRELOAD = ["atoll.batch.score", "atoll.model.predictor", "pyarrow.parquet", "lightgbm"]
"""Imported once by the fork server, so each worker starts without importing them again."""

STOP_S = 5.0
"""How long an idle worker gets to exit when the job ends."""


class LocalEngine:
    """``workers`` processes on this machine."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.peak_in_flight = 0
        self._pool: _Pool | None = None

    def start(self) -> None:
        return None  # the workers start with the first tasks, with the job's context

    def map_unordered(
        self, fn: Callable[[C, T], R], context: C, tasks: Iterable[T]
    ) -> Iterator[tuple[T, R]]:
        self.close()
        self._pool = _Pool(self.workers, fn, context)
        return windowed(self, tasks, self._pool)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def _context() -> multiprocessing.context.ForkServerContext | multiprocessing.context.SpawnContext:
    """``forkserver`` where there is one (no inherited locks or threads), else ``spawn``."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _serve(conn: Connection, context: Any) -> None:
    """A worker's life: one numeric thread, then tasks until told to stop or orphaned."""
    from threadpoolctl import threadpool_limits

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(SINGLE_THREAD_ENV)
    threadpool_limits(1)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if message is None:
            return
        fn, task = message
        try:
            answer: tuple[str, Any] = ("ok", fn(context, task))
        except Exception as exc:
            answer = ("error", exc)
        try:
            conn.send(answer)
        except Exception as exc:  # an answer pickle refuses (nothing was written)
            conn.send(("error", AtollError(f"{type(exc).__name__}: {exc}")))


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection
    ticket: int | None = None


class _Pool:
    """The workers of one job, as the :class:`Window` drives them (tickets for futures)."""

    def __init__(self, size: int, fn: Callable[[Any, Any], Any], context: Any) -> None:
        self.fn, self.context = fn, context
        self.mp = _context()
        self.waiting: deque[tuple[int, Any]] = deque()
        self.done: dict[int, tuple[str, Any]] = {}
        self.tickets = itertools.count()
        self.workers: list[_Worker] = []
        try:
            for _ in range(size):
                self.workers.append(self._spawn())
        except BaseException:  # none of the workers started so far may outlive the pool
            for worker in self.workers:
                worker.process.terminate()
            self.close()
            raise

    def _spawn(self) -> _Worker:
        parent, child = self.mp.Pipe()
        process = self.mp.Process(
            target=_serve, args=(child, self.context), name="atoll-batch-worker", daemon=True
        )
        process.start()
        child.close()  # the worker holds the only other end: its death is EOF here
        return _Worker(process, parent)

    def submit(self, task: Any) -> int:
        ticket = next(self.tickets)
        self.waiting.append((ticket, task))
        self._dispatch()
        return ticket

    def wait_any(self, futures: list[int]) -> Iterable[int]:
        while True:
            ready = [ticket for ticket in futures if ticket in self.done]
            if ready:
                return ready
            busy = [w for w in self.workers if w.ticket is not None]
            signalled = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
            for worker in busy:
                if worker.conn in signalled or worker.process.sentinel in signalled:
                    self._receive(worker)
            self._dispatch()

    def result(self, future: int) -> Any:
        kind, value = self.done.pop(future)
        if kind == "lost":
            raise WorkerLost(value)
        if kind == "error":
            raise value
        return value

    def close(self) -> None:
        for worker in self.workers:
            if worker.ticket is None:
                _quietly(worker.conn.send, None)
            else:  # interrupted mid-task: its work is not wanted
                worker.process.terminate()
        for worker in self.workers:
            worker.process.join(STOP_S)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self.workers = []

    def _dispatch(self) -> None:
        for worker in self.workers:
            if worker.ticket is None and self.waiting:
                worker.ticket, task = self.waiting.popleft()
                try:
                    worker.conn.send((self.fn, task))
                except OSError:  # it died while idle
                    self._lost(worker)

    def _receive(self, worker: _Worker) -> None:
        assert worker.ticket is not None
        try:
            if not worker.conn.poll():  # its process ended with nothing to say
                raise EOFError
            answer = worker.conn.recv()
        except (EOFError, OSError):
            self._lost(worker)
            return
        except Exception as exc:  # an answer that cannot be read back
            answer = ("error", AtollError(f"a worker's answer is unreadable: {exc}"))
        self.done[worker.ticket] = answer
        worker.ticket = None
        if not worker.process.is_alive():
            self._replace(worker)

    def _lost(self, worker: _Worker) -> None:
        assert worker.ticket is not None
        worker.process.join(STOP_S)
        code = worker.process.exitcode
        self.done[worker.ticket] = ("lost", f"worker {worker.process.pid} ended ({code})")
        self._replace(worker)

    def _replace(self, worker: _Worker) -> None:
        worker.conn.close()
        worker.process.join(STOP_S)
        self.workers[self.workers.index(worker)] = self._spawn()


def _quietly(send: Callable[[Any], None], message: Any) -> None:
    try:
        send(message)
    except OSError:
        return
