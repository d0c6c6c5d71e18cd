"""Reading a time window of the prediction log in chunks, with the feedback joined.

Monitoring folds a window of any length into histograms, so the rows must
arrive in bounded chunks: the query streams through a server-side cursor
(PostgreSQL) or SQLite's own row-at-a-time stepping, and never materialises
the window.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from atoll.store.db import transaction
from atoll.store.tables import feedback, prediction_log
from atoll.types import check_model_name


@dataclass(frozen=True)
class LoggedRow:
    """One logged prediction, with its ground-truth label once feedback has arrived."""

    prediction_id: str
    created_at: datetime
    version: int
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    latency_ms: float
    labelled: bool
    label: Any
    label_received_at: datetime | None


def iter_log(
    engine: Engine,
    model: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    version: int | None = None,
    batch_rows: int = 5_000,
) -> Iterator[list[LoggedRow]]:
    """Yield the log rows of ``model`` with ``since <= created_at < until``, in chunks.

    Rows come oldest first, each with its feedback label (feedback is unique
    per prediction id, so a row is never counted twice). The connection stays
    open while the caller iterates: consume the iterator promptly.
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, not {batch_rows}")
    log, fb = prediction_log.c, feedback.c
    query = (
        sa.select(
            log.prediction_id,
            log.created_at,
            log.version,
            log.inputs,
            log.outputs,
            log.latency_ms,
            fb.label,
            fb.received_at,
        )
        .select_from(prediction_log.outerjoin(feedback, fb.prediction_id == log.prediction_id))
        .where(*_window(model, since, until, version))
        .order_by(log.created_at, log.id)
    )
    with transaction(engine, read_only=True) as conn:
        result = conn.execution_options(stream_results=True, yield_per=batch_rows).execute(query)
        for partition in result.partitions():
            yield [_row(row._mapping) for row in partition]


def count_unmatched_feedback(
    engine: Engine, *, since: datetime | None = None, until: datetime | None = None
) -> int:
    """Feedback received in the window for prediction ids the log does not hold.

    Such labels can name no prediction, so no metric counts them; monitoring
    reports how many there were. Feedback has no model, so the count is over
    all models.
    """
    fb = feedback.c
    known = sa.select(prediction_log.c.id).where(prediction_log.c.prediction_id == fb.prediction_id)
    conditions = [~sa.exists(known)]
    if since is not None:
        conditions.append(fb.received_at >= since)
    if until is not None:
        conditions.append(fb.received_at < until)
    query = sa.select(sa.func.count()).select_from(feedback).where(*conditions)
    with transaction(engine, read_only=True) as conn:
        return int(conn.execute(query).scalar_one())


def _window(
    model: str, since: datetime | None, until: datetime | None, version: int | None
) -> list[sa.ColumnElement[bool]]:
    log = prediction_log.c
    conditions = [log.model == check_model_name(model)]
    if since is not None:
        conditions.append(log.created_at >= since)
    if until is not None:
        conditions.append(log.created_at < until)
    if version is not None:
        conditions.append(log.version == version)
    return conditions


def _row(row: Any) -> LoggedRow:
    received = row["received_at"]
    return LoggedRow(
        prediction_id=row["prediction_id"],
        created_at=row["created_at"],
        version=int(row["version"]),
        inputs=orjson.loads(row["inputs"]),
        outputs=orjson.loads(row["outputs"]),
        latency_ms=float(row["latency_ms"]),
        labelled=received is not None,
        label=None if row["label"] is None else orjson.loads(row["label"]),
        label_received_at=received,
    )
