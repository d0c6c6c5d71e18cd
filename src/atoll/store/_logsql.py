"""The prediction log's and feedback's rows and SQL, shared by the writer thread and readers.

Records are checked and turned into insert-ready rows (inputs and outputs as
JSON text) when they are submitted, on the caller's thread: a record the
database would refuse never reaches the queue or a spill file, where it would
block every replay after it.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from atoll.store.db import run_transaction
from atoll.store.tables import feedback, prediction_log, utcnow
from atoll.types import check_model_name

BATCH_ROLE = "batch"
"""The role of rows `atoll predict` scored: no request answered them."""
ROLES = ("primary", "canary", "shadow", BATCH_ROLE)
"""Which version answered: the one served, a canary taking some traffic, a silent shadow,
or a batch job (``atoll predict`` with ``monitor.log.batch``)."""

Row = dict[str, Any]
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


@dataclass(frozen=True)
class LogRecord:
    """One logged prediction: a row's validated inputs and the model's outputs for it."""

    prediction_id: str
    request_id: str
    created_at: datetime
    model: str
    version: int
    role: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    latency_ms: float
    key_id: str | None


@dataclass(frozen=True)
class LogRequest:
    """What the records of rows answered together share: who answered them, when, how fast."""

    request_id: str
    created_at: datetime
    model: str
    version: int
    role: str
    latency_ms: float
    key_id: str | None

    def rows(
        self,
        ids: Sequence[str],
        inputs: Mapping[str, Sequence[Any]],
        outputs: Sequence[dict[str, Any]],
    ) -> list[Row]:
        """The insert-ready rows of one answer: ``inputs`` by column, ``outputs`` by row.

        What the rows share is checked once, not once per row: for a
        1,000-row request that was most of the cost of logging it.

        Raises:
            ValueError: what :func:`to_row` refuses.
        """
        shared = _shared_fields(self)
        names = list(inputs)
        columns = [python_values(values) for values in inputs.values()]
        values = zip(*columns, strict=True) if names else ((),) * len(ids)
        rows = []
        for prediction_id, row, output in zip(ids, values, outputs, strict=True):
            record = shared.copy()
            record["prediction_id"] = _text(prediction_id, "prediction_id", 36)
            record["inputs"] = dumps_json(dict(zip(names, row, strict=True)), "inputs")
            record["outputs"] = dumps_json(output, "outputs")
            rows.append(record)
        return rows


def python_values(values: Sequence[Any]) -> Sequence[Any]:
    """A numpy column as Python values, converted in C: cheaper than a numpy scalar per cell.

    orjson writes numbers exactly as it writes numpy's scalars. Datetimes
    become the ISO text orjson writes for them (to the microsecond, without a
    zero fraction), except NaT, which is null: orjson would write NaT as
    1677-09-21T00:12:43.145224, a date.
    """
    if not isinstance(values, np.ndarray):
        return values
    if values.dtype.kind == "M":
        text = np.datetime_as_string(values, unit="us").tolist()
        return [None if t == "NaT" else t.removesuffix(".000000") for t in text]
    if values.dtype.kind in "biufO":
        return list(values.tolist())
    return values


def to_row(record: LogRecord) -> Row:
    """The insert-ready row of a record.

    Raises:
        ValueError: a field the table would refuse (too long, naive datetime,
            unknown role, non-finite latency, inputs or outputs that are not JSON).
    """
    return {
        **_shared_fields(record),
        "prediction_id": _text(record.prediction_id, "prediction_id", 36),
        "inputs": dumps_json(record.inputs, "inputs"),
        "outputs": dumps_json(record.outputs, "outputs"),
    }


def _shared_fields(source: LogRecord | LogRequest) -> Row:
    """The checked columns that every row of one answer has in common."""
    _text(source.request_id, "request_id", 64, empty_ok=True)
    if source.key_id is not None:
        _text(source.key_id, "key_id", 32)
    check_model_name(source.model)
    if not isinstance(source.created_at, datetime) or source.created_at.tzinfo is None:
        raise ValueError("a log record's created_at must be a timezone-aware datetime")
    if isinstance(source.version, bool) or not isinstance(source.version, int):
        raise ValueError(f"a log record's version must be an integer, not {source.version!r}")
    if source.role not in ROLES:
        raise ValueError(f"unknown log record role {source.role!r}: use one of {list(ROLES)}")
    latency = float(source.latency_ms)
    if not math.isfinite(latency):
        raise ValueError(f"a log record's latency_ms must be finite, not {latency}")
    return {
        "request_id": source.request_id,
        "created_at": source.created_at,
        "model": source.model,
        "version": source.version,
        "role": source.role,
        "latency_ms": latency,
        "key_id": source.key_id,
    }


def to_record(row: Mapping[str, Any]) -> LogRecord:
    """The record of a stored row (or a spill-file line)."""
    created = row["created_at"]
    return LogRecord(
        prediction_id=row["prediction_id"],
        request_id=row["request_id"],
        created_at=datetime.fromisoformat(created) if isinstance(created, str) else created,
        model=row["model"],
        version=int(row["version"]),
        role=row["role"],
        inputs=orjson.loads(row["inputs"]),
        outputs=orjson.loads(row["outputs"]),
        latency_ms=float(row["latency_ms"]),
        key_id=row["key_id"],
    )


def dumps_json(value: Any, what: str) -> str:
    """Compact JSON text (NaN and infinities become null; numpy values are allowed)."""
    return json_bytes(value, what).decode("utf-8")


def json_bytes(value: Any, what: str) -> bytes:
    """:func:`dumps_json` as UTF-8 bytes: the same text, for a caller that sends it on.

    Raises:
        ValueError: ``value`` holds something JSON cannot represent (``what`` names it).
    """
    try:
        return orjson.dumps(value, default=_isoformat, option=_JSON_OPTIONS)
    except TypeError as error:  # orjson.JSONEncodeError is a TypeError
        raise ValueError(f"the {what} of a log record are not JSON-serialisable: {error}") from None


def _isoformat(value: Any) -> str:
    """Date-like values orjson leaves alone (pandas Timestamps, subclasses) as ISO text."""
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return str(isoformat())
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def insert_rows(
    conn: Connection,
    rows: Sequence[Row],
    *,
    relaxed: bool,
    between: Callable[[], None] | None = None,
) -> None:
    """Insert log rows, ignoring ones already stored: replays never duplicate.

    ``relaxed`` lets PostgreSQL acknowledge the commit before its WAL is flushed
    (batched durability already accepts losing the last moments on a crash).
    ``between`` is called before each statement of many rows (the writer's
    pacing: binding a statement's values holds the GIL).
    """
    if not rows:
        return
    if relaxed and conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
    insert = _log_insert(conn)
    for start in range(0, len(rows), insert.rows_per_statement):
        if between is not None:
            between()
        part = rows[start : start + insert.rows_per_statement]
        conn.exec_driver_sql(insert.sql(len(part)), insert.values(part))


@dataclass(frozen=True)
class _MultiRowInsert:
    """The log's INSERT with many rows per statement, written for the driver directly.

    Executing the SQLAlchemy statement builds its parameters row by row in
    Python (8.2 ms for a 1,000-row answer, measured here), and the driver's
    ``executemany`` runs, and lets go of the GIL for, one statement per row
    (2.9 ms); one statement of many rows binds its values in C and runs once
    (1.9 ms). The SQL and the values are the same; the type's own bind
    processors still convert each value (UTC datetimes, once per distinct
    value: the rows of one answer share it).
    """

    table: str
    names: tuple[str, ...]
    placeholder: str
    processors: Mapping[int, Callable[[Any], Any]]
    rows_per_statement: int

    def sql(self, n_rows: int) -> str:
        return _multi_row_sql(self.table, self.names, self.placeholder, n_rows)

    def values(self, rows: Sequence[Row]) -> tuple[Any, ...]:
        """Every row's values, in column order, one after the other."""
        flat = list(chain.from_iterable(map(itemgetter(*self.names), rows)))
        width = len(self.names)
        for position, process in self.processors.items():
            converted: dict[Any, Any] = {}
            for i in range(position, len(flat), width):
                value = flat[i]
                if value not in converted:
                    converted[value] = process(value)
                flat[i] = converted[value]
        return tuple(flat)


@lru_cache(maxsize=16)
def _multi_row_sql(table: str, names: tuple[str, ...], placeholder: str, n_rows: int) -> str:
    one = "(" + ", ".join([placeholder] * len(names)) + ")"
    return (
        f"INSERT INTO {table} ({', '.join(names)}) VALUES {', '.join([one] * n_rows)} "
        "ON CONFLICT (prediction_id) DO NOTHING"
    )


_MAX_ROWS_PER_STATEMENT = 100
"""Small enough that binding one statement holds the GIL briefly (~0.2 ms); measured here,
inserting 500 rows cost the same in statements of 100, 250 or 1,000 rows."""
_POSTGRES_MAX_PARAMETERS = 65_535


def _log_insert(conn: Connection) -> _MultiRowInsert:
    dialect = conn.dialect
    names = tuple(column.name for column in prediction_log.columns if column.name != "id")
    processors = {}
    for position, name in enumerate(names):
        process = prediction_log.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors[position] = process
    if dialect.name == "postgresql":
        placeholder, max_parameters = "%s", _POSTGRES_MAX_PARAMETERS
    else:
        placeholder, max_parameters = "?", _sqlite_max_parameters(conn)
    per_statement = max(1, min(_MAX_ROWS_PER_STATEMENT, max_parameters // len(names)))
    return _MultiRowInsert(prediction_log.name, names, placeholder, processors, per_statement)


def _sqlite_max_parameters(conn: Connection) -> int:
    """SQLite's limit on ``?`` per statement: 32,766 since 3.32, 999 before."""
    driver = conn.connection.driver_connection
    getlimit = getattr(driver, "getlimit", None)
    if getlimit is None:
        return 999
    return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))


def write_now(engine: Engine, batches: Callable[[], Iterable[Sequence[Row]]]) -> int:
    """Write rows in one transaction, now, bypassing the writer's queue; returns how many.

    ``batches`` gives checked rows: made by :func:`to_row` or :meth:`LogRequest.rows`.

    For callers that log many rows at a point of their own choosing (a batch
    job logs each chunk before writing its part). ``batches`` is called again
    if the transaction is retried; inserting a batch at a time keeps memory
    bounded by the batch, whatever the total. Ids already stored are ignored,
    so writing the same records again never duplicates them.

    Raises:
        ValueError: a record the table would refuse (see :func:`to_row`).
    """

    def work(conn: Connection) -> int:
        count = 0
        for batch in batches():
            insert_rows(conn, batch, relaxed=False)
            count += len(batch)
        return count

    return run_transaction(engine, work)


def record_feedback(engine: Engine, items: Sequence[tuple[str, Any]], key_id: str | None) -> int:
    """Store ground-truth labels by prediction id; returns how many distinct ids were stored.

    A prediction id the log does not hold (yet) is fine: the log may not have
    been flushed. Feedback for an id already labelled replaces the label; when
    one call names an id twice, the last label wins.

    Raises:
        ValueError: a prediction id or key id that is too long, or a label that is not JSON.
    """
    if key_id is not None:
        _text(key_id, "key_id", 32)
    labels: dict[str, str] = {}
    for prediction_id, label in items:
        _text(prediction_id, "prediction_id", 36)
        labels[prediction_id] = dumps_json(label, "label")
    if not labels:
        return 0
    now = utcnow()
    rows = [
        {"prediction_id": pid, "label": label, "received_at": now, "key_id": key_id}
        for pid, label in labels.items()
    ]

    def work(conn: Connection) -> None:
        insert = _insert(conn, feedback)
        upsert = insert.on_conflict_do_update(
            index_elements=["prediction_id"],
            set_={
                "label": insert.excluded.label,
                "received_at": insert.excluded.received_at,
                "key_id": insert.excluded.key_id,
            },
        )
        conn.execute(upsert, rows)

    run_transaction(engine, work)
    return len(rows)


def read_log(engine: Engine, *, model: str | None = None, limit: int = 1000) -> list[LogRecord]:
    """The newest ``limit`` log records (of one model, or of all), newest first."""
    query = sa.select(prediction_log).order_by(prediction_log.c.id.desc()).limit(max(0, limit))
    if model is not None:
        query = query.where(prediction_log.c.model == check_model_name(model))

    def work(conn: Connection) -> list[LogRecord]:
        return [to_record(dict(row._mapping)) for row in conn.execute(query)]

    return run_transaction(engine, work, read_only=True)


def count_log(engine: Engine, model: str | None = None) -> int:
    """How many records the log holds (of one model, or of all)."""
    query = sa.select(sa.func.count()).select_from(prediction_log)
    if model is not None:
        query = query.where(prediction_log.c.model == check_model_name(model))
    return int(
        run_transaction(engine, lambda conn: conn.execute(query).scalar_one(), read_only=True)
    )


def _insert(conn: Connection, table: sa.Table) -> Any:
    """The dialect's INSERT, which knows ``ON CONFLICT``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _text(value: Any, what: str, max_length: int, *, empty_ok: bool = False) -> str:
    """``value``, checked: a string of at most ``max_length`` characters without NUL."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, not {type(value).__name__}")
    if len(value) > max_length or (not value and not empty_ok) or "\x00" in value:
        raise ValueError(f"{what} {value[:80]!r} must be 1-{max_length} characters without NUL")
    return value
