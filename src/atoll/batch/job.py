"""One batch job, start to end: plan -> engine -> sink, with progress and a store record.

The job skips the chunks a killed run already wrote, reports progress after
each task, records itself in the store (start, counts about once a second,
outcome), and returns a summary. On failure the parts written so far stay for
a resume and the record says why it failed. A job that feeds the prediction
log writes each chunk's rows there before the chunk's part
(:mod:`~atoll.batch.feed`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from atoll._hashing import sha256_json
from atoll.batch.feed import LogFeed, LogTarget
from atoll.batch.logged import LogIds
from atoll.batch.record import Counts, JobRecord
from atoll.batch.score import ScoreContext, score_task
from atoll.batch.sink import PartCounts, PartSink, part_counts
from atoll.errors import AtollError, DataError

if TYPE_CHECKING:
    from atoll.batch.engines import Engine
    from atoll.batch.model import ModelHandle
    from atoll.batch.plan import Plan, Task
    from atoll.batch.score import ChunkResult
    from atoll.store.jobs import JobStore

PARTS_VERSION = 1
"""Part layout version: part files of another layout are never resumed."""


@dataclass(frozen=True)
class Progress:
    """Where a job stands; ``rows_resumed`` were done by an earlier run."""

    rows_done: int
    rows_scored: int
    rows_quarantined: int
    rows_total: int | None
    chunks_done: int
    chunks_total: int | None
    rows_resumed: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return (self.rows_done - self.rows_resumed) / self.seconds if self.seconds > 0 else 0.0


class ProgressReporter(Protocol):
    """Shows a job's progress (a bar on a terminal, log lines elsewhere); must be cheap."""

    def note(self, text: str) -> None: ...

    def progress(self, progress: Progress) -> None: ...


@dataclass(frozen=True)
class BatchSummary:
    """What a finished job did.

    Attributes:
        quarantine: the file of refused rows, or None when every row was valid.
        chunks_resumed: chunks an earlier, interrupted run had already written.
        peak_in_flight: the most tasks out at once (bounded by 2 x workers).
        largest_chunk_rows: the most rows any chunk held (at most ``chunk_rows``).
        rows_logged: rows written to the prediction log (resumed chunks' included);
            None when the job did not feed the log.
    """

    job_id: str | None
    model: str
    version: int
    input: str
    output: Path
    quarantine: Path | None
    rows_scored: int
    rows_quarantined: int
    chunks: int
    chunks_resumed: int
    rows_resumed: int
    seconds: float
    peak_in_flight: int
    largest_chunk_rows: int
    engine: str
    workers: int
    rows_logged: int | None = None

    @property
    def rows_per_s(self) -> float:
        rows = self.rows_scored + self.rows_quarantined - self.rows_resumed
        return rows / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class BatchRequest:
    """A planned job: the model, the checked input, where it goes and how it runs.

    ``log`` is set when the job feeds the prediction log.
    """

    handle: ModelHandle
    plan: Plan
    output: Path
    format: str
    engine: Engine
    engine_name: str
    fail_on_invalid: bool = False
    log: LogTarget | None = None


@dataclass
class _Tally:
    """Running counts, starting from the parts an earlier run left."""

    done: dict[int, PartCounts]
    logging: bool = False
    started: float = field(default_factory=time.perf_counter)
    chunks_seen: int = 0
    largest: int = 0

    def __post_init__(self) -> None:
        self.resumed_chunks = len(self.done)
        self.rows_in = sum(c.rows_in for c in self.done.values())
        self.rows_scored = sum(c.rows_scored for c in self.done.values())
        self.rows_quarantined = sum(c.rows_quarantined for c in self.done.values())
        self.rows_logged = sum(c.rows_logged for c in self.done.values())
        self.resumed_rows = self.rows_in

    def add(self, result: ChunkResult, rows_logged: int = 0) -> None:
        counts = part_counts(result, rows_logged)
        previous = self.done.get(result.index)
        if previous is not None:  # written again (a retried task): count it once
            self._count(previous, -1)
        self.done[result.index] = counts
        self._count(counts, 1)
        self.largest = max(self.largest, result.rows_in)

    def _count(self, counts: PartCounts, sign: int) -> None:
        self.rows_in += sign * counts.rows_in
        self.rows_scored += sign * counts.rows_scored
        self.rows_quarantined += sign * counts.rows_quarantined
        self.rows_logged += sign * counts.rows_logged

    def counts(self) -> Counts:
        logged = self.rows_logged if self.logging else None
        return Counts(self.rows_scored, self.rows_quarantined, len(self.done), logged)

    def progress(self, plan: Plan) -> Progress:
        return Progress(
            rows_done=self.rows_in,
            rows_scored=self.rows_scored,
            rows_quarantined=self.rows_quarantined,
            rows_total=plan.rows_total,
            chunks_done=len(self.done),
            chunks_total=plan.chunks_total,
            rows_resumed=self.resumed_rows,
            seconds=time.perf_counter() - self.started,
        )


def job_key(request: BatchRequest) -> str:
    """Everything that decides the parts' content: equal keys, interchangeable parts."""
    plan = request.plan
    return sha256_json(
        {
            "parts": PARTS_VERSION,
            "model": request.handle.digest,
            "input": plan.fingerprint,
            "chunk_rows": plan.chunk_rows,
            "format": request.format,
            "columns": list(plan.columns.read),
            "passthrough": list(plan.columns.passthrough),
            "log": request.log is not None,  # logging adds the prediction_id column
        }
    )


def run_batch(
    request: BatchRequest,
    *,
    jobs: JobStore | None = None,
    reporter: ProgressReporter | None = None,
    sink: PartSink | None = None,
) -> BatchSummary:
    """Run a planned job to its end; the output exists only if it succeeded.

    ``sink`` is the output's work folder, already locked by a caller that
    checked the output before planning; one is opened here when None. The
    plan is closed and the engine stopped however the job ends.

    Raises:
        AtollError: the input failed mid-way, a worker died twice, the output
            could not be written; the parts done so far are kept for a resume.
    """
    if sink is None:
        sink = PartSink(request.output, request.format)
    try:
        _check_log_columns(request)
        sink.lock()  # no-op when the caller took it
        tally = _Tally(_open(request, sink, reporter), request.log is not None)
        record = JobRecord(jobs)
        try:
            record.start(**_record_fields(request))
            quarantine = _score(request, sink, tally, record, reporter)
        except BaseException as exc:
            record.failed(tally.counts(), request.plan.chunks_total, exc)
            if isinstance(exc, AtollError) or not isinstance(exc, Exception):
                raise
            raise AtollError(f"the batch job failed: {type(exc).__name__}: {exc}") from exc
    except BaseException:
        sink.abandon()
        raise
    finally:
        request.engine.close()
        request.plan.close()
    summary = _summary(request, tally, record.job_id, quarantine)
    record.succeeded(tally.counts(), tally.chunks_seen)
    return summary


def _open(
    request: BatchRequest, sink: PartSink, reporter: ProgressReporter | None
) -> dict[int, PartCounts]:
    """Take over the work folder; the chunks an earlier run wrote, told to ``reporter``."""
    note = sink.open(job_key(request), _about(request))
    if note is not None and reporter is not None:
        reporter.note(note)
    done = sink.done()
    if done and reporter is not None:
        reporter.note(f"resuming: {len(done)} chunks were done by an earlier run")
        if request.plan.kind == "sql":
            reporter.note(SQL_RESUME_NOTE)
    return done


SQL_RESUME_NOTE = (
    "a SQL job resumes on the word of its query: the rows done before were not read again, so "
    "if the query now returns other rows or another order (no ORDER BY), old and new rows mix"
)


def _score(
    request: BatchRequest,
    sink: PartSink,
    tally: _Tally,
    record: JobRecord,
    reporter: ProgressReporter | None,
) -> Path | None:
    plan = request.plan
    request.engine.start()
    feed = _feed(request, sink, record)
    ids = None if request.log is None else LogIds(sink.run_id, request.log.sample)
    context = ScoreContext(
        request.handle, plan.columns, plan.chunk_rows, request.fail_on_invalid, ids
    )
    for _, result in request.engine.map_unordered(score_task, context, _todo(plan, tally)):
        logged = 0
        if feed is not None:  # before the part: a crash between the two re-scores the chunk
            sink.keep()
            logged = feed.write(result)
        sink.write(result, logged)  # a task is one chunk: its part is written as it finishes
        tally.add(result, logged)
        progress = tally.progress(plan)
        if reporter is not None:
            reporter.progress(progress)
        record.progress(tally.counts(), plan.chunks_total)
    return sink.finish(tally.chunks_seen)


def _check_log_columns(request: BatchRequest) -> None:
    """A job that logs adds ``prediction_id`` to its output: no passthrough column may take it."""
    if request.log is not None and "prediction_id" in request.plan.columns.passthrough:
        raise DataError(
            "the passthrough column prediction_id clashes with the prediction ids a job that "
            "feeds the prediction log writes: pass other columns, or score without logging",
            column="prediction_id",
        )


def _feed(request: BatchRequest, sink: PartSink, record: JobRecord) -> LogFeed | None:
    """The job's writer to the prediction log; its request id names this job (or its run)."""
    if request.log is None:
        return None
    request_id = f"batch:{record.job_id or sink.run_id}"
    return LogFeed(request.log, request.handle, request_id)


def _todo(plan: Plan, tally: _Tally) -> Iterator[Task]:
    """The plan's tasks less those whose chunk is already written."""
    for task in plan.tasks():
        tally.chunks_seen = max(tally.chunks_seen, task.chunk + 1)
        if task.chunk not in tally.done:
            yield task


def _about(request: BatchRequest) -> dict[str, object]:
    handle = request.handle
    return {"model": f"{handle.name}@{handle.version}", "input": request.plan.label}


def _record_fields(request: BatchRequest) -> dict[str, Any]:
    """What the store keeps about a job: what it scored with, on what, and how."""
    plan, handle = request.plan, request.handle
    options = {
        "engine": request.engine_name,
        "workers": request.engine.workers,
        "chunk_rows": plan.chunk_rows,
        "format": request.format,
        "passthrough": list(plan.columns.passthrough),
        "fail_on_invalid": request.fail_on_invalid,
        "log": request.log is not None,
    }
    return {
        "model": handle.name,
        "version": handle.version,
        "input": plan.label,
        "input_fingerprint": plan.fingerprint,
        "output": str(request.output),
        "options": options,
    }


def _summary(
    request: BatchRequest, tally: _Tally, job_id: str | None, quarantine: Path | None
) -> BatchSummary:
    return BatchSummary(
        job_id=job_id,
        model=request.handle.name,
        version=request.handle.version,
        input=request.plan.label,
        output=request.output,
        quarantine=quarantine,
        rows_scored=tally.rows_scored,
        rows_quarantined=tally.rows_quarantined,
        chunks=len(tally.done),
        chunks_resumed=tally.resumed_chunks,
        rows_resumed=tally.resumed_rows,
        seconds=time.perf_counter() - tally.started,
        peak_in_flight=request.engine.peak_in_flight,
        largest_chunk_rows=tally.largest,
        engine=request.engine_name,
        workers=request.engine.workers,
        rows_logged=tally.rows_logged if tally.logging else None,
    )
