"""The prediction log: every prediction written to the store off the request path.

Requests hand records to :meth:`PredictionLog.submit`, which only queues them;
one writer thread groups whatever is queued into one transaction (group
commit). A server hands over answers instead (:meth:`PredictionLog.submit_later`, or
:meth:`PredictionLog.queue_later` when it will not wait for them):
their rows are built by the writer just before it inserts them, so a request
costs an append to a queue, not a thread switch, and the writer wakes once per
flush, not once per request. Memory stays bounded: when the queue is full,
records go straight to a spill file instead. When the database fails,
batches go to the spill file too, and the writer retries every second; once
the database answers, it replays every spill file in the folder (other
processes' leftovers included).
A record is durable once committed or fsynced to a spill file; it is never
dropped without an error logged and counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.engine import Connection, Engine

from atoll.store import _spill
from atoll.store._logsql import (
    BATCH_ROLE,
    ROLES,
    LogRecord,
    LogRequest,
    Row,
    count_log,
    insert_rows,
    json_bytes,
    python_values,
    read_log,
    record_feedback,
    to_row,
    write_now,
)
from atoll.store.db import HeldConnection, Retry

logger = logging.getLogger("atoll.predlog")

Durability = Literal["batched", "strict"]
_GIL_SLICE_S = 0.0002
"""The writer lets the GIL go after holding it this long (building rows, binding them, resolving
futures): a server's event loop then waits at most this long behind it, not a whole switch
interval (5 ms). Measured at 64 connections, 1 ms slices gave a p99 of 29-31 ms, 0.2 ms 23-26."""
_WRITE_RETRY = Retry(budget_s=1.0, first_delay_s=0.05, max_delay_s=0.25)
"""Wait out a brief lock; past that a batch spills rather than holding up the queue."""


@dataclass(frozen=True)
class LogStats:
    """Counts since start, in records.

    Attributes:
        written: committed by the writer.
        spilled: appended to a spill file (database down, or queue full).
        replayed: read back from spill files and committed.
        pending: waiting in the queue now.
        spilling: the database is failing and new batches go to the spill file.
        failed: neither committed nor spilled (the spill file failed too); logged as errors.
    """

    written: int
    spilled: int
    replayed: int
    pending: int
    spilling: bool
    failed: int = 0

    def __add__(self, other: LogStats) -> LogStats:
        """Two writers' counts together (spilling when either spills)."""
        return LogStats(
            written=self.written + other.written,
            spilled=self.spilled + other.spilled,
            replayed=self.replayed + other.replayed,
            pending=self.pending + other.pending,
            spilling=self.spilling or other.spilling,
            failed=self.failed + other.failed,
        )


RowBuilder = Callable[[], list[Row]]
"""Builds the insert-ready rows of one answer (raises ValueError for a row the table refuses)."""


@dataclass
class _Entry:
    """Queued rows, or the builder of rows not made yet (``count`` says how many it makes)."""

    rows: list[Row] | None
    count: int
    future: Future[None] | None
    build: RowBuilder | None = None
    at: float = field(default_factory=time.monotonic)

    def materialize(self) -> list[Row]:
        """The rows, built now if they were not yet (raises what the builder raises)."""
        if self.rows is None:
            assert self.build is not None
            self.rows, self.build = self.build(), None
        return self.rows


class _Pacer:
    """Called between small steps of the writer's work; gives the GIL away once a slice is used.

    Only while the writer keeps up (``keeping_up()``): a writer that yields every
    slice to a saturated event loop gets the GIL back once per switch interval,
    falls behind, and its queue fills.
    """

    def __init__(self, keeping_up: Callable[[], bool], slice_s: float = _GIL_SLICE_S) -> None:
        self.keeping_up = keeping_up
        self.slice_s = slice_s
        self._since = time.perf_counter()

    def __call__(self) -> None:
        if time.perf_counter() - self._since > self.slice_s:
            if self.keeping_up():
                time.sleep(0)  # let the event loop take the GIL before going on
            self._since = time.perf_counter()


class PredictionLog:
    """Writes records off the request path: a background thread, bounded memory, spill file.

    ``shares_gil`` says an event loop runs in the same process: the writer then lets
    the GIL go between small steps while it keeps up. The log process, where the
    writer is alone, passes False.
    """

    def __init__(
        self,
        engine: Engine,
        spill_dir: Path,
        *,
        durability: Durability = "batched",
        flush_interval_s: float = 0.2,
        max_batch: int = 500,
        queue_size: int = 10_000,
        retry_interval_s: float = 1.0,
        shares_gil: bool = True,
    ) -> None:
        if durability not in ("batched", "strict"):
            raise ValueError(f"unknown durability {durability!r}: use 'batched' or 'strict'")
        if flush_interval_s < 0 or max_batch < 1 or queue_size < 1 or retry_interval_s <= 0:
            raise ValueError("flush_interval_s >= 0, max_batch >= 1, queue_size >= 1 required")
        self.engine = engine
        self.spill_dir = Path(spill_dir)
        self.durability = durability
        self.flush_interval_s = flush_interval_s
        self.max_batch = max_batch
        self.queue_size = queue_size
        self.retry_interval_s = retry_interval_s
        self.shares_gil = shares_gil
        self._spill = _spill.SpillFile(self.spill_dir)
        self._cond = threading.Condition()
        self._entries: deque[_Entry] = deque()
        self._queued = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._spilling = False
        self._needs_replay = True  # leftovers of earlier processes, first of all
        self._next_retry = 0.0
        self._counts = {"written": 0, "spilled": 0, "replayed": 0, "failed": 0}
        self._connection = HeldConnection(engine)  # the writer thread's

    def start(self) -> None:
        """Start the writer thread; it first replays spill files left in ``spill_dir``."""
        with self._cond:
            if self._thread is not None or self._closed:
                raise RuntimeError("a prediction log starts once, and not after close()")
            self.spill_dir.mkdir(parents=True, exist_ok=True)
            self._thread = threading.Thread(target=self._run, name="atoll-predlog", daemon=True)
            self._thread.start()

    def submit(self, records: Sequence[LogRecord]) -> Future[None]:
        """Queue records; the future resolves once they are durable.

        Never waits for the database. When the queue is full (or the log is
        closed), the records are appended to a spill file on the caller's thread.

        Raises:
            ValueError: a record the table would refuse; nothing of the call is queued.
        """
        rows = [to_row(record) for record in records]
        future = _in_flight()
        self._queue(rows, len(rows), None, future)
        return future

    def submit_later(self, count: int, build: RowBuilder) -> Future[None]:
        """Queue ``count`` rows that ``build`` makes when the writer takes them.

        For callers on a hot path: the rows (JSON text and all) are built on
        the writer's thread, in the batch it commits. A row the table refuses
        fails this call's future and is logged as an error and counted
        ``failed``; the rest of its batch is written.
        """
        future = _in_flight()
        self._queue(None, count, build, future)
        return future

    def queue_later(self, count: int, build: RowBuilder) -> None:
        """:meth:`submit_later` for a caller that never waits for the rows (a batched server).

        No future is made or resolved: per request, that was a lock, a
        condition and a notify on two threads. Refused rows are still logged
        and counted.
        """
        self._queue(None, count, build, None)

    def _queue(
        self,
        rows: list[Row] | None,
        count: int,
        build: RowBuilder | None,
        future: Future[None] | None,
    ) -> None:
        if count == 0:
            if future is not None:
                future.set_result(None)
            return
        entry = _Entry(rows, count, future, build)
        with self._cond:
            closed = self._closed
            fits = self._queued == 0 or self._queued + count <= self.queue_size
            if fits and not closed:
                was_empty = not self._entries
                self._entries.append(entry)
                self._queued += count
                if was_empty or self.durability == "strict" or self._queued >= self.max_batch:
                    # otherwise the writer is already waiting for the first entry's flush
                    # time: waking it for each record would cost a thread switch apiece
                    self._cond.notify()
                return
        self._spill_entries([entry])
        if closed:
            self._spill.close()  # nobody will replay it in this process: free it for the next

    def close(self, timeout_s: float = 10.0) -> None:
        """Write out everything queued, try one last replay, and stop the writer.

        What cannot reach the database stays in spill files for the next start.
        """
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
            if thread.is_alive():
                logger.error("the prediction log writer did not stop within %.1f s", timeout_s)
        with self._cond:  # never started, or stuck: spill what it did not take
            left = list(self._entries)
            self._entries.clear()
            self._queued = 0
        if left:
            self._spill_entries(left)
        if thread is None or not thread.is_alive():
            self._spill.close()

    @property
    def stats(self) -> LogStats:
        """Counts since start, and the queue depth now."""
        with self._cond:
            return LogStats(pending=self._queued, spilling=self._spilling, **self._counts)

    def _run(self) -> None:
        try:
            while True:
                batch = self._take()
                if batch:
                    self._write(batch)
                elif self._closed:
                    break
                if self._needs_replay and (
                    not self._spilling or time.monotonic() >= self._next_retry
                ):
                    self._replay()
            if self._needs_replay:
                self._replay()  # the database may be back: one last try before stopping
            self._spill.close()
        finally:
            self._connection.close()  # on this thread, which opened it

    def _take(self) -> list[_Entry]:
        """The next group of entries to commit: at most ``max_batch`` rows (at least one entry)."""
        with self._cond:
            while True:
                now = time.monotonic()
                if self._entries:
                    due = self._entries[0].at + self.flush_interval_s
                    if (
                        self.durability == "strict"
                        or self._closed
                        or self._queued >= self.max_batch
                        or now >= due
                    ):
                        return self._pop()
                    self._cond.wait(due - now)
                elif self._closed:
                    return []
                elif self._needs_replay:
                    wait = self._next_retry - now if self._spilling else 0.0
                    if wait <= 0:
                        return []
                    self._cond.wait(wait)
                else:
                    self._cond.wait()

    def _pop(self) -> list[_Entry]:
        batch = [self._entries.popleft()]
        rows = batch[0].count
        while self._entries and rows + self._entries[0].count <= self.max_batch:
            entry = self._entries.popleft()
            batch.append(entry)
            rows += entry.count
        self._queued -= rows
        return batch

    def _write(self, batch: list[_Entry]) -> None:
        batch = self._built(batch)
        if not batch:
            return
        if not self._spilling:
            rows = [row for entry in batch for row in entry.materialize()]
            try:
                self._insert(rows)
            except Exception:
                logger.warning(
                    "the prediction log cannot reach the database; spilling to %s",
                    self.spill_dir,
                    exc_info=True,
                )
                self._set_spilling()
            else:
                self._count("written", len(rows))
                _resolve(batch, self._pacer())
                return
        self._spill_entries(batch)

    def _replay(self) -> None:
        with self._cond:
            self._needs_replay = False  # an append during the replay sets it again
        self._spill.close()  # our own file too
        try:
            count = _spill.replay(self.spill_dir, self._insert, self.max_batch)
        except Exception:
            logger.debug("spill replay failed; retrying later", exc_info=True)
            with self._cond:
                self._needs_replay = True
            self._set_spilling()
            return
        with self._cond:
            recovered = self._spilling
            self._spilling = False
            self._counts["replayed"] += count
        if recovered:
            logger.warning("the prediction log reaches the database again (%d replayed)", count)

    def _insert(self, rows: list[Row]) -> None:
        relaxed = self.durability == "batched"

        def work(conn: Connection) -> None:
            insert_rows(conn, rows, relaxed=relaxed, between=self._pacer())

        self._connection.run(work, retry=_WRITE_RETRY)

    def _spill_entries(self, entries: list[_Entry]) -> None:
        entries = self._built(entries)
        if not entries:
            return
        rows = [row for entry in entries for row in entry.materialize()]
        try:
            self._spill.append(rows)
        except Exception as error:  # a full or broken disk: nowhere left to put them
            logger.error(
                "LOST %d prediction log record(s): the database and the spill file %s both failed",
                len(rows),
                self.spill_dir,
                exc_info=True,
            )
            self._count("failed", len(rows))
            for entry in entries:
                _fail(entry.future, error)
            return
        with self._cond:
            self._counts["spilled"] += len(rows)
            self._needs_replay = True
            self._cond.notify()
        _resolve(entries)

    def _built(self, entries: list[_Entry]) -> list[_Entry]:
        """The entries whose rows could be built; the others fail, logged and counted."""
        kept = []
        pace = self._pacer()
        for entry in entries:
            if entry.rows is None:
                pace()
            try:
                entry.materialize()
            except Exception as error:  # a record the table would refuse
                logger.error("a prediction log record was refused: %s", error)
                self._count("failed", entry.count)
                _fail(entry.future, error)
            else:
                kept.append(entry)
        return kept

    def _pacer(self) -> _Pacer:
        # Strict durability: every waiting request is answered at the commit, so the writer is
        # the critical path and never yields early. Batched: read without the lock (a stale
        # count only moves one yield).
        # A writer alone in its process (the log process) has no event loop to yield to:
        # yielding there only handed the GIL back and forth (~12% of its CPU per record).
        if self.durability == "strict" or not self.shares_gil:
            return _Pacer(lambda: False)
        return _Pacer(lambda: self._queued < self.max_batch)

    def _set_spilling(self) -> None:
        with self._cond:
            self._spilling = True
            self._next_retry = time.monotonic() + self.retry_interval_s

    def _count(self, name: str, n: int) -> None:
        with self._cond:
            self._counts[name] += n


def _in_flight() -> Future[None]:
    future: Future[None] = Future()
    future.set_running_or_notify_cancel()  # the records are in flight: not cancellable
    return future


def _resolve(entries: list[_Entry], pace: Callable[[], None] = lambda: None) -> None:
    for entry in entries:
        if entry.future is None:
            continue
        pace()
        with suppress(InvalidStateError):  # futures are never cancellable; belt and braces
            entry.future.set_result(None)


def _fail(future: Future[Any] | None, error: BaseException) -> None:
    if future is None:
        return
    with suppress(InvalidStateError):
        future.set_exception(error)


__all__ = [
    "BATCH_ROLE",
    "ROLES",
    "LogRecord",
    "LogRequest",
    "LogStats",
    "PredictionLog",
    "Row",
    "RowBuilder",
    "count_log",
    "json_bytes",
    "python_values",
    "read_log",
    "record_feedback",
    "write_now",
]
