"""Batch job records: one row per ``atoll predict`` job, for audit and the UI.

A job is recorded when it starts (``running``), its counts are updated as
chunks finish, and it ends ``succeeded`` or ``failed`` with its error. A job
whose process was killed stays ``running`` with its last counts: the record
says how far it got, and the rerun that resumes it is a new job. A job that
feeds the prediction log also keeps the rows it logged, in ``options``
(``rows_logged``), which spares the table a column most jobs would leave empty.
"""

from __future__ import annotations

import builtins
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from atoll.errors import NotFoundError, RegistryError
from atoll.store.db import run_transaction
from atoll.store.tables import batch_jobs, utcnow
from atoll.types import check_model_name

RUNNING = "running"
FINISHED = ("succeeded", "failed")
"""The outcomes :meth:`JobStore.finish` accepts."""

_MAX_ERROR = 10_000
"""Longer errors are cut: the record names the failure, the log keeps the rest."""


@dataclass(frozen=True)
class BatchJob:
    """One batch job as the store knows it.

    Attributes:
        job_id: uuid4 hex, unique.
        input: the input as given (glob, path or ``sql:`` with the URL redacted).
        input_fingerprint: identifies the input's content (e.g. sha256 of its files).
        status: ``running``, ``succeeded`` or ``failed``.
        chunks_total: None while the number of chunks is not known (CSV, SQL).
        seconds: wall time from start to finish; None while running.
        options: how it ran (engine, workers, chunk_rows, format, passthrough,
            log) and, for a job that feeds the prediction log, ``rows_logged``.
    """

    job_id: str
    model: str
    version: int
    input: str
    input_fingerprint: str
    output: str
    status: str
    rows_scored: int
    rows_quarantined: int
    chunks_done: int
    chunks_total: int | None
    started_at: datetime
    finished_at: datetime | None
    seconds: float | None
    error: str | None
    options: dict[str, Any]

    @property
    def rows_logged(self) -> int | None:
        """Rows the job wrote to the prediction log; None when it did not feed the log."""
        value = self.options.get("rows_logged")
        return None if value is None else int(value)


class JobStore:
    """Record batch jobs: start, progress, finish; read them back newest first."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def start(
        self,
        *,
        model: str,
        version: int,
        input: str,
        input_fingerprint: str,
        output: str,
        options: dict[str, Any],
    ) -> BatchJob:
        """Record a new running job and return it with its fresh id.

        Raises:
            InvalidNameError: ``model`` is not a valid model name.
            RegistryError: ``options`` cannot be stored as JSON.
        """
        check_model_name(model)
        _check_json(options)
        row: dict[str, Any] = {
            "job_id": uuid.uuid4().hex,
            "model": model,
            "version": int(version),
            "input": input,
            "input_fingerprint": input_fingerprint,
            "output": output,
            "status": RUNNING,
            "rows_scored": 0,
            "rows_quarantined": 0,
            "chunks_done": 0,
            "chunks_total": None,
            "started_at": utcnow(),
            "finished_at": None,
            "seconds": None,
            "error": None,
            "options": options,
        }

        def work(conn: Connection) -> BatchJob:
            conn.execute(batch_jobs.insert().values(**row))
            return _one(conn, row["job_id"])

        return run_transaction(self.engine, work)

    def progress(
        self,
        job_id: str,
        *,
        rows_scored: int,
        rows_quarantined: int,
        chunks_done: int,
        chunks_total: int | None,
        rows_logged: int | None = None,
    ) -> None:
        """Update a running job's counts (totals so far, not increments).

        ``rows_logged``, when given, is kept in the job's options.

        Raises:
            NotFoundError: no job has this id.
            RegistryError: negative counts, or the job has already finished.
        """
        values = _counts(rows_scored, rows_quarantined, chunks_done)
        values["chunks_total"] = (
            None if chunks_total is None else _count("chunks_total", chunks_total)
        )

        def work(conn: Connection) -> None:
            _note_logged(conn, job_id, values, rows_logged)
            _update_running(conn, job_id, values)

        run_transaction(self.engine, work)

    def finish(
        self,
        job_id: str,
        *,
        status: str,
        rows_scored: int,
        rows_quarantined: int,
        chunks_done: int,
        error: str | None = None,
        rows_logged: int | None = None,
    ) -> BatchJob:
        """End a running job with its outcome and final counts; a job finishes once.

        ``rows_logged``, when given, is kept in the job's options.

        Raises:
            NotFoundError: no job has this id.
            RegistryError: an unknown status, negative counts, or the job has
                already finished.
        """
        if status not in FINISHED:
            raise RegistryError(f"a job ends as one of {list(FINISHED)}, not {status!r}")
        values = _counts(rows_scored, rows_quarantined, chunks_done)
        values["status"] = status
        values["error"] = None if error is None else error[:_MAX_ERROR]

        def work(conn: Connection) -> BatchJob:
            started = _one(conn, job_id, lock=True).started_at
            finished = utcnow()
            values.update(finished_at=finished, seconds=(finished - started).total_seconds())
            _note_logged(conn, job_id, values, rows_logged)
            _update_running(conn, job_id, values)
            return _one(conn, job_id)

        return run_transaction(self.engine, work)

    def get(self, job_id: str) -> BatchJob:
        """One job by id.

        Raises:
            NotFoundError: no job has this id.
        """
        return run_transaction(self.engine, lambda conn: _one(conn, job_id), read_only=True)

    def list(self, *, model: str | None = None, limit: int = 50) -> builtins.list[BatchJob]:
        """The newest ``limit`` jobs, newest first; only ``model``'s when given.

        Raises:
            RegistryError: ``limit`` is below 1.
        """
        if limit < 1:
            raise RegistryError(f"limit must be at least 1, not {limit}")
        query = sa.select(batch_jobs).order_by(batch_jobs.c.id.desc()).limit(limit)
        if model is not None:
            query = query.where(batch_jobs.c.model == model)

        def work(conn: Connection) -> builtins.list[BatchJob]:
            return [_job(row._mapping) for row in conn.execute(query).all()]

        return run_transaction(self.engine, work, read_only=True)


def _check_json(options: dict[str, Any]) -> None:
    try:
        json.dumps(options, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise RegistryError(f"a job's options must be plain JSON: {error}") from None


def _count(name: str, value: int) -> int:
    if value < 0:
        raise RegistryError(f"{name} cannot be negative, not {value}", field=name)
    return int(value)


def _counts(rows_scored: int, rows_quarantined: int, chunks_done: int) -> dict[str, Any]:
    return {
        "rows_scored": _count("rows_scored", rows_scored),
        "rows_quarantined": _count("rows_quarantined", rows_quarantined),
        "chunks_done": _count("chunks_done", chunks_done),
    }


def _note_logged(
    conn: Connection, job_id: str, values: dict[str, Any], rows_logged: int | None
) -> None:
    """Add the job's options, with ``rows_logged`` set, to the values to write."""
    if rows_logged is None:
        return
    options = _one(conn, job_id, lock=True).options
    values["options"] = {**options, "rows_logged": _count("rows_logged", rows_logged)}


def _update_running(conn: Connection, job_id: str, values: dict[str, Any]) -> None:
    """Change a running job; says why when the job is unknown or already over."""
    where = (batch_jobs.c.job_id == job_id) & (batch_jobs.c.status == RUNNING)
    if conn.execute(sa.update(batch_jobs).where(where).values(**values)).rowcount == 1:
        return
    job = _one(conn, job_id)
    raise RegistryError(f"batch job {job_id} has already finished ({job.status})", job_id=job_id)


def _one(conn: Connection, job_id: str, *, lock: bool = False) -> BatchJob:
    query = sa.select(batch_jobs).where(batch_jobs.c.job_id == job_id)
    row = conn.execute(query.with_for_update() if lock else query).one_or_none()
    if row is None:
        raise NotFoundError(f"no batch job has the id {job_id!r}", job_id=job_id)
    return _job(row._mapping)


def _job(row: Any) -> BatchJob:
    seconds = row["seconds"]
    return BatchJob(
        job_id=row["job_id"],
        model=row["model"],
        version=row["version"],
        input=row["input"],
        input_fingerprint=row["input_fingerprint"],
        output=row["output"],
        status=row["status"],
        rows_scored=int(row["rows_scored"]),
        rows_quarantined=int(row["rows_quarantined"]),
        chunks_done=row["chunks_done"],
        chunks_total=row["chunks_total"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        seconds=None if seconds is None else float(seconds),
        error=row["error"],
        options=dict(row["options"]),
    )


__all__ = ["FINISHED", "RUNNING", "BatchJob", "JobStore"]
