"""Engines: where the chunk function runs. One small interface, one class per backend.

An engine maps ``fn(context, task)`` over tasks and yields results as they
complete, with at most ``2 x workers`` tasks in flight, so memory stays
bounded by the chunk size and the worker count, never by the input. The
context is sent to each worker once. When a task fails, no new task is sent,
the ones in flight are finished and yielded (their work is kept), then the
error is raised. Here: the interface, the in-flight window every engine
shares, and the in-process engine; :mod:`~atoll.batch.local_engine` and
:mod:`~atoll.batch.dask_engine` hold the others. A Ray engine would be one
more module.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from atoll.errors import AtollError, DataError

C = TypeVar("C")
T = TypeVar("T")
R = TypeVar("R")
F = TypeVar("F")
T_contra = TypeVar("T_contra", contravariant=True)
R_co = TypeVar("R_co", covariant=True)

IN_FLIGHT_PER_WORKER = 2
"""One task running and one waiting per worker: no worker idles between tasks."""

MAX_ATTEMPTS = 2
"""A task whose worker died is tried once more; dying a second time fails the job."""


class Engine(Protocol):
    """Runs the chunk function; ``peak_in_flight`` says how many tasks were out at most."""

    workers: int
    peak_in_flight: int

    def start(self) -> None:
        """Start or connect to the workers; raise AtollError when that cannot be done."""
        ...

    def map_unordered(
        self, fn: Callable[[C, T], R], context: C, tasks: Iterable[T]
    ) -> Iterator[tuple[T, R]]:
        """``(task, fn(context, task))`` for every task, in the order they complete."""
        ...

    def close(self) -> None: ...


class WorkerLost(Exception):
    """The process running a task died (killed, out of memory, crashed)."""


class Backend(Protocol[T_contra, R_co, F]):
    """What :class:`Window` needs from a pool of workers."""

    def submit(self, task: T_contra) -> F: ...

    def wait_any(self, futures: list[F]) -> Iterable[F]: ...

    def result(self, future: F) -> R_co:
        """The task's result; raises :class:`WorkerLost` when its worker died."""
        ...


@dataclass
class _Slot(Generic[T]):
    task: T
    attempts: int = 1


@dataclass
class Window:
    """Keeps at most ``limit`` tasks in flight, retries lost ones, and drains on failure."""

    limit: int
    peak: int = 0

    def run(self, tasks: Iterable[T], backend: Backend[T, R, Any]) -> Iterator[tuple[T, R]]:
        pending: dict[Any, _Slot[T]] = {}
        retry: deque[_Slot[T]] = deque()
        source = iter(tasks)
        error: BaseException | None = None
        while True:
            try:
                if error is None:
                    self._fill(pending, retry, source, backend)
            except StopIteration:
                source = iter(())
            except Exception as exc:  # the input failed: finish what is out, then raise
                error, source = exc, iter(())
            if not pending:
                break
            for slot, outcome in self._collect(pending, backend):
                if isinstance(outcome, WorkerLost):
                    error = error or self._again(slot, retry)
                elif isinstance(outcome, BaseException):
                    error = error or outcome
                else:
                    yield slot.task, outcome
        if error is not None:
            raise error

    def _fill(
        self,
        pending: dict[Any, _Slot[T]],
        retry: deque[_Slot[T]],
        source: Iterator[T],
        backend: Backend[T, R, Any],
    ) -> None:
        """Submit tasks (retried ones first) up to the limit."""
        while len(pending) < self.limit:
            slot = retry.popleft() if retry else _Slot(next(source))
            pending[backend.submit(slot.task)] = slot
            self.peak = max(self.peak, len(pending))

    def _collect(
        self, pending: dict[Any, _Slot[T]], backend: Backend[T, R, Any]
    ) -> Iterator[tuple[_Slot[T], R | BaseException]]:
        """The tasks that completed, failed, or lost their worker (as :class:`WorkerLost`)."""
        for future in backend.wait_any(list(pending)):
            slot = pending.pop(future)
            try:
                yield slot, backend.result(future)
            except Exception as exc:
                yield slot, exc

    def _again(self, slot: _Slot[T], retry: deque[_Slot[T]]) -> AtollError | None:
        """A task whose worker died goes again, first; a second death is fatal."""
        slot.attempts += 1
        if slot.attempts > MAX_ATTEMPTS:
            return AtollError(
                f"a worker process died twice while scoring {slot.task}; "
                "the chunks done so far are kept: run the same command again to resume"
            )
        retry.appendleft(slot)
        return None


def windowed(
    engine: Engine, tasks: Iterable[T], backend: Backend[T, R, Any]
) -> Iterator[tuple[T, R]]:
    """Run ``tasks`` on ``backend`` through a :class:`Window` sized for ``engine``'s workers."""
    window = Window(IN_FLIGHT_PER_WORKER * engine.workers)
    try:
        yield from window.run(tasks, backend)
    finally:
        engine.peak_in_flight = max(engine.peak_in_flight, window.peak)


class InProcessEngine:
    """One worker: this process, one numeric thread (nothing to start, nothing to ship)."""

    workers = 1

    def __init__(self) -> None:
        self.peak_in_flight = 0

    def start(self) -> None:
        return None

    def map_unordered(
        self, fn: Callable[[C, T], R], context: C, tasks: Iterable[T]
    ) -> Iterator[tuple[T, R]]:
        from threadpoolctl import threadpool_limits

        for task in tasks:
            self.peak_in_flight = 1
            with threadpool_limits(1):
                result = fn(context, task)
            yield task, result

    def close(self) -> None:
        return None


ENGINES = ("local", "dask")


def make_engine(kind: str, workers: int, address: str | None = None) -> Engine:
    """The engine a job asked for: ``local`` (this process when ``workers`` is 1) or ``dask``.

    Raises:
        DataError: an unknown engine, fewer than one worker, or an address
            given to the local engine.
    """
    from atoll.batch.local_engine import LocalEngine

    if kind not in ENGINES:
        raise DataError(f"unknown engine {kind!r}: use one of {', '.join(ENGINES)}")
    if workers < 1:
        raise DataError(f"workers must be at least 1, not {workers}")
    if kind == "dask":
        from atoll.batch.dask_engine import DaskEngine

        return DaskEngine(workers, address)
    if address is not None:
        raise DataError("--address names a Dask scheduler: use it with --engine dask")
    return LocalEngine(workers) if workers > 1 else InProcessEngine()
