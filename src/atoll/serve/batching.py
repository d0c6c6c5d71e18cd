"""Adaptive micro-batching: requests that arrive together share one predict call.

The queue itself (:class:`BatchQueue`) is sans-I/O: it is told the time and
only decides *when* a batch is due and *which* requests it holds, so its rules
are tested without a clock. :class:`Batcher` drives it on the event loop and
runs each batch on the model's own thread, so the hop off the loop is paid
once per batch, not once per request (research/anchors/serving: a generic
thread pool per request cost 4x the CPU of the call itself).

Rules (learned from MLServer's batching bugs):
- the deadline is fixed at the first arrival, on the monotonic clock;
- a request is never split; one larger than ``max_rows`` is a batch of its own;
- only requests with the same columns are stacked; results are split back by
  row counts, so a batched answer equals the unbatched one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from atoll.serve.errors import Overloaded

Columns = dict[str, list[Any]]
R = TypeVar("R")

log = logging.getLogger("atoll.serve")

INLINE_BUDGET_S = 0.02
"""A batch run on the event loop holds every other request that long (CPU time, measured on the
loop's thread); past this, the model's later batches go to its thread, where the loop keeps
serving and the request timeout holds."""


@dataclass(slots=True)
class Pending(Generic[R]):
    """One request waiting in the queue."""

    columns: Columns
    n_rows: int
    future: asyncio.Future[R]
    arrived: float

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(self.columns)


@dataclass
class BatchQueue(Generic[R]):
    """Which waiting requests form the next batch, and when it is due."""

    max_rows: int
    max_wait_s: float
    max_requests: int
    _items: deque[Pending[R]] = field(default_factory=deque)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def rows(self) -> int:
        return sum(item.n_rows for item in self._items)

    def add(self, item: Pending[R]) -> None:
        if len(self._items) >= self.max_requests:
            raise Overloaded("the prediction queue is full; retry shortly")
        self._items.append(item)

    def due_at(self) -> float | None:
        """When the next batch must go: the first arrival plus the wait; None when empty."""
        return self._items[0].arrived + self.max_wait_s if self._items else None

    def is_due(self, now: float) -> bool:
        due = self.due_at()
        return due is not None and (now >= due or self._head_rows() >= self.max_rows)

    def take(self) -> list[Pending[R]]:
        """The oldest request plus those behind it with the same columns, within max_rows."""
        if not self._items:
            return []
        first = self._items.popleft()
        batch, rows = [first], first.n_rows
        kept: deque[Pending[R]] = deque()
        while self._items:
            item = self._items.popleft()
            if item.key == first.key and rows + item.n_rows <= self.max_rows:
                batch.append(item)
                rows += item.n_rows
            else:
                kept.append(item)
        self._items = kept
        return batch

    def _head_rows(self) -> int:
        key, rows = self._items[0].key, 0
        for item in self._items:
            if item.key == key:
                rows += item.n_rows
        return rows


def merge(batch: Sequence[Pending[Any]]) -> Columns:
    """One column dict holding every request's rows, in arrival order."""
    if len(batch) == 1:
        return batch[0].columns
    merged: Columns = {name: [] for name in batch[0].columns}
    for item in batch:
        for name, values in item.columns.items():
            merged[name].extend(values)
    return merged


RunBatch = Callable[[Columns, list[int]], list[R | BaseException]]
"""Predict on merged columns; one result (or the error for that request) per row count."""


class Batcher(Generic[R]):
    """Feeds one model's queue to its thread; ``enqueue`` gives a request the future it awaits.

    A batch of at most ``inline_max_rows`` rows is predicted on the event loop's
    own thread instead. Under load the model thread and the event loop take
    turns holding the GIL anyway; handing a small batch over costs two thread
    wake-ups and GIL hand-offs, and each thread then runs slower on a cache the
    other one just used. Measured here on one-row requests at 64 connections,
    predicting batches of up to 128 rows on the loop gave 22% more requests a
    second (one worker and two) and a lower p99. A large batch still goes to the
    model thread: the loop keeps serving while the model's native code runs
    without the GIL, and its numeric threads may use the worker's cores.
    ``thread_init`` runs in both threads (the loop's, before its first batch). A batch
    that holds the loop longer than ``INLINE_BUDGET_S`` sends the model's later
    batches to its thread for good (logged).
    """

    def __init__(
        self,
        run: RunBatch[R],
        *,
        max_rows: int,
        max_wait_s: float,
        max_requests: int,
        enabled: bool = True,
        thread_name: str = "atoll-model",
        on_batch: Callable[[int, float], None] | None = None,
        thread_init: Callable[[], None] | None = None,
        inline_max_rows: int = 0,
    ) -> None:
        self._run = run
        self._inline_max_rows = inline_max_rows
        self._loop_init = thread_init  # run once on the loop's thread, then None
        self._queue: BatchQueue[R] = BatchQueue(
            max_rows if enabled else 1, max_wait_s if enabled else 0.0, max_requests
        )
        self._enabled = enabled
        self._thread_name = thread_name
        self._executor = ThreadPoolExecutor(1, thread_name, initializer=thread_init)
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._on_batch = on_batch
        self._busy = False

    @property
    def depth(self) -> int:
        """Requests waiting (not counting the batch being computed)."""
        return len(self._queue)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    def enqueue(self, columns: Columns, n_rows: int) -> asyncio.Future[R]:
        """Queue a request; its future gets the result (or error). Raises Overloaded when full."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.add(Pending(columns, n_rows, future, time.monotonic()))
        self._wakeup.set()
        return future

    async def close(self) -> None:
        """Answer everything queued, then stop the loop and the thread."""
        while len(self._queue) or self._busy:
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)

    async def _loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while len(self._queue):
                await self._until_due()
                self._busy = True
                try:
                    await self._run_one(self._queue.take())
                finally:
                    self._busy = False

    async def _run_one(self, batch: list[Pending[R]]) -> None:
        loop = asyncio.get_running_loop()
        counts = [item.n_rows for item in batch]
        rows = sum(counts)
        started = time.monotonic()
        try:
            if rows <= self._inline_max_rows:
                results = self._run_inline(merge(batch), counts, rows)
            else:
                results = await loop.run_in_executor(
                    self._executor, self._run, merge(batch), counts
                )
        except Exception as error:  # the runner itself failed: every request learns it
            results = [error] * len(batch)
        _deliver(batch, results)
        if self._on_batch is not None:
            self._on_batch(rows, started - batch[0].arrived)

    def _run_inline(
        self, columns: Columns, counts: list[int], rows: int
    ) -> list[R | BaseException]:
        """The batch, run here; a model too slow for the loop goes to its thread from now on."""
        if self._loop_init is not None:
            init, self._loop_init = self._loop_init, None
            init()
        started = time.thread_time()  # CPU: a worker the OS set aside for a while is not slow
        try:
            return self._run(columns, counts)
        finally:
            took = time.thread_time() - started
            if took > INLINE_BUDGET_S:
                self._inline_max_rows = 0
                log.warning(
                    "%s: a batch of %d rows took %.0f ms on the event loop; this model's "
                    "batches go to its own thread from now on",
                    self._thread_name,
                    rows,
                    took * 1000,
                )

    async def _until_due(self) -> None:
        """Give requests parsed in this loop turn a chance to join, up to the deadline."""
        await asyncio.sleep(0)
        while not self._queue.is_due(time.monotonic()):
            due = self._queue.due_at()
            if due is None:
                return
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), max(0.0, due - time.monotonic()))


def _deliver(batch: Sequence[Pending[R]], results: Sequence[R | BaseException]) -> None:
    for item, result in zip(batch, results, strict=True):
        if item.future.done():  # the request gave up (timeout, disconnect)
            continue
        if isinstance(result, BaseException):
            item.future.set_exception(result)
        else:
            item.future.set_result(result)
