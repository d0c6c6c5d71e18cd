"""Reading a time window of the prediction log in chunks, with the feedback joined.

Monitoring folds a window of any length into histograms, so the rows must
arrive in bounded chunks: the query streams through a server-side cursor
(PostgreSQL) or SQLite's own row-at-a-time stepping, and never materialises
the window. :func:`iter_log` gives each row whole; :func:`iter_log_chunks`
gives a chunk's inputs and outputs as columns, which is what folding needs
and many times faster to decode.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import numpy as np
import orjson
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from atoll.store._jsonframe import JsonObjects, decode_objects, records_frame
from atoll.store._logsql import BATCH_ROLE
from atoll.store._readahead import read_ahead
from atoll.store.db import transaction
from atoll.store.tables import feedback, prediction_log
from atoll.types import check_model_name

_RAW = sa.types.NullType()
"""Selects a column as the driver gives it, without the column type's conversion."""
_INPUTS, _OUTPUTS, _LATENCY, _CREATED_AT, _RECEIVED_AT = 0, 1, 2, 3, 7
"""Positions in the rows of :func:`_partitions`."""
_COLUMNS = 8
_FETCH_ROWS = 500
"""Rows fetched at a time by :func:`iter_log_chunks`, which then joins them into chunks."""


@dataclass(frozen=True)
class LoggedRow:
    """One logged prediction, with its ground-truth label once feedback has arrived."""

    prediction_id: str
    created_at: datetime
    version: int
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    latency_ms: float  # NaN for a row scored in batch: no request, no latency
    labelled: bool
    label: Any
    label_received_at: datetime | None


@dataclass(frozen=True)
class LogChunk:
    """Consecutive logged rows (at least one), column by column.

    ``inputs`` has a column per input any row logged, null where a row lacks
    it; ``outputs`` likewise, nested objects flattened (``prediction``,
    ``probabilities.<class>``). The rows with feedback are also kept whole in
    ``labelled``: metrics need them one by one.
    """

    inputs: pd.DataFrame
    outputs: pd.DataFrame
    latency_ms: np.ndarray
    first_at: datetime
    last_at: datetime
    labelled: list[LoggedRow]

    @property
    def rows(self) -> int:
        return int(self.latency_ms.shape[0])

    @classmethod
    def of_rows(cls, rows: Sequence[LoggedRow]) -> LogChunk:
        """The chunk of rows already decoded (at least one)."""
        if not rows:
            raise ValueError("a log chunk has at least one row")
        moments = [row.created_at for row in rows]
        return cls(
            inputs=records_frame([row.inputs for row in rows]),
            outputs=records_frame([row.outputs for row in rows], flatten=True),
            latency_ms=np.fromiter((row.latency_ms for row in rows), float, len(rows)),
            first_at=min(moments),
            last_at=max(moments),
            labelled=[row for row in rows if row.labelled],
        )


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
    for rows, moment in _partitions(engine, model, since, until, version, batch_rows):
        yield [_row(row, moment) for row in rows]


def iter_log_chunks(
    engine: Engine,
    model: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    version: int | None = None,
    batch_rows: int = 20_000,
) -> Generator[LogChunk, None, None]:
    """The same rows as :func:`iter_log`, column by column: a :class:`LogChunk` per chunk.

    Inputs and outputs are decoded a chunk at a time into frames; only the
    rows with feedback are decoded one by one. The database is read one chunk
    ahead, in a worker thread, while the caller decodes and folds this one.
    """
    parts = _raw_chunks(engine, model, since, until, version, batch_rows)
    for raw in read_ahead(parts, "atoll-log-read"):
        yield LogChunk(
            inputs=decode_objects(raw.inputs),
            outputs=decode_objects(raw.outputs, flatten=True),
            latency_ms=raw.latency_ms,
            first_at=raw.first_at,
            last_at=raw.last_at,
            labelled=raw.labelled,
        )


@dataclass(frozen=True)
class _RawChunk:
    """A chunk as read, its JSON not decoded yet."""

    inputs: JsonObjects
    outputs: JsonObjects
    latency_ms: np.ndarray
    first_at: datetime
    last_at: datetime
    labelled: list[LoggedRow]


def _raw_chunks(
    engine: Engine,
    model: str,
    since: datetime | None,
    until: datetime | None,
    version: int | None,
    batch_rows: int,
) -> Generator[_RawChunk, None, None]:
    """Chunks of ``batch_rows`` rows (rounded up to whole fetches), fetched in small parts.

    Each part is turned into columns at once, so the driver's row objects die
    young: kept for a whole chunk they would reach the garbage collector's
    oldest generation, whose collections visit every live object, and make
    them frequent (a fifth of the reading time for 20,000-row chunks).
    """
    columns: list[list[Any]] = [[] for _ in range(_COLUMNS)]
    labelled: list[LoggedRow] = []
    fetch_rows = min(batch_rows, _FETCH_ROWS)
    for rows, moment in _partitions(engine, model, since, until, version, fetch_rows):
        for column, values in zip(columns, zip(*rows, strict=True), strict=True):
            column.extend(values)
        labelled += [_row(row, moment) for row in rows if row[_RECEIVED_AT] is not None]
        if len(columns[_INPUTS]) >= batch_rows:
            yield _raw_chunk(columns, labelled, moment)
            columns, labelled = [[] for _ in range(_COLUMNS)], []
    if columns[_INPUTS]:
        yield _raw_chunk(columns, labelled, moment)


def _raw_chunk(
    columns: list[list[Any]], labelled: list[LoggedRow], moment: Callable[[Any], datetime]
) -> _RawChunk:
    created = columns[_CREATED_AT]
    return _RawChunk(
        inputs=JsonObjects.of(columns[_INPUTS]),
        outputs=JsonObjects.of(columns[_OUTPUTS]),
        latency_ms=np.asarray(columns[_LATENCY], dtype=float),
        first_at=moment(created[0]),
        last_at=moment(created[-1]),
        labelled=labelled,
    )


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


def _partitions(
    engine: Engine,
    model: str,
    since: datetime | None,
    until: datetime | None,
    version: int | None,
    batch_rows: int,
) -> Iterator[tuple[Sequence[Any], Callable[[Any], datetime]]]:
    """The window's rows as the driver gives them, in chunks, and how to read their moments.

    Moments are left as the driver gives them (text on SQLite) and turned into
    aware datetimes only where needed: doing so for every row of a long window
    would cost more than reading it.
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, not {batch_rows}")
    log, fb = prediction_log.c, feedback.c
    query = (
        sa.select(
            log.inputs,
            log.outputs,
            # a batch-scored row answered no request: it has no latency to judge
            sa.case((log.role == BATCH_ROLE, sa.null()), else_=log.latency_ms),
            sa.type_coerce(log.created_at, _RAW),
            log.prediction_id,
            log.version,
            fb.label,
            sa.type_coerce(fb.received_at, _RAW),
        )
        .select_from(prediction_log.outerjoin(feedback, fb.prediction_id == log.prediction_id))
        .where(*_window(model, since, until, version))
        .order_by(log.created_at, log.id)
    )
    with transaction(engine, read_only=True) as conn:
        moment = _moment_reader(conn.dialect)
        streamed = conn.execution_options(stream_results=True, yield_per=batch_rows)
        # closed before the transaction ends, also when the reader stops early: a
        # PostgreSQL server-side cursor left open would be closed by the collector
        with streamed.execute(query) as result:
            for partition in result.partitions():
                yield partition, moment


def _moment_reader(dialect: sa.Dialect) -> Callable[[Any], datetime]:
    """Turns a moment as the driver gives it into the aware datetime the column type reads."""
    processor = prediction_log.c.created_at.type.dialect_impl(dialect).result_processor(
        dialect, None
    )
    if processor is None:  # UTCDateTime always converts
        raise TypeError("prediction_log.created_at has no result processor")
    return cast(Callable[[Any], datetime], processor)


def _row(row: Sequence[Any], moment: Callable[[Any], datetime]) -> LoggedRow:
    inputs, outputs, latency, created, prediction_id, version, label, received = row
    return LoggedRow(
        prediction_id=prediction_id,
        created_at=moment(created),
        version=int(version),
        inputs=orjson.loads(inputs),
        outputs=orjson.loads(outputs),
        latency_ms=math.nan if latency is None else float(latency),
        labelled=received is not None,
        label=None if label is None else orjson.loads(label),
        label_received_at=None if received is None else moment(received),
    )
