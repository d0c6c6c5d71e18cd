"""Stored monitoring results: one row per check, model version and window.

The UI and the scheduler read a model's history from here instead of
recomputing it from the prediction log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from atoll.store._history import newest
from atoll.store.db import run_transaction
from atoll.store.tables import monitor_results, utcnow
from atoll.types import check_model_name

STATUSES = ("ok", "warn", "alert", "no_data")
"""What a check can conclude."""


@dataclass(frozen=True)
class MonitorResult:
    """One stored check result."""

    id: int
    model: str
    version: int
    window_start: datetime | None
    window_end: datetime | None
    check: str
    status: str
    result: dict[str, Any]
    created_at: datetime


def save_results(
    engine: Engine,
    model: str,
    version: int,
    window: tuple[datetime | None, datetime | None],
    results: Mapping[str, tuple[str, Mapping[str, Any]]],
) -> int:
    """Store each check's ``(status, result)`` for one window in one transaction.

    Returns:
        how many rows were written.

    Raises:
        ValueError: an unknown status or a check name over 32 characters.
    """
    check_model_name(model)
    now = utcnow()
    rows = [
        _row(model, version, window, check, status, dict(result), now)
        for check, (status, result) in results.items()
    ]
    if rows:
        run_transaction(engine, lambda conn: conn.execute(monitor_results.insert(), rows))
    return len(rows)


def list_results(
    engine: Engine,
    model: str,
    *,
    check: str | None = None,
    version: int | None = None,
    bounded: bool = False,
    before_id: int | None = None,
    limit: int = 100,
) -> list[MonitorResult]:
    """A model's newest ``limit`` stored results (of one check or version, or all), newest first.

    ``bounded`` keeps only results of log windows with both ends (a data
    file's have neither); ``before_id`` only results stored before that one,
    to page back through history.
    """
    equal = {"check_name": check, "version": version}
    where: list[sa.ColumnElement[bool]] = []
    if bounded:
        where += [monitor_results.c.window_start.is_not(None)]
        where += [monitor_results.c.window_end.is_not(None)]
    if before_id is not None:
        where.append(monitor_results.c.id < before_id)
    rows = newest(engine, monitor_results, model, limit=limit, equal=equal, where=where)
    return [_result(row) for row in rows]


def _row(
    model: str,
    version: int,
    window: tuple[datetime | None, datetime | None],
    check: str,
    status: str,
    result: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    if status not in STATUSES:
        raise ValueError(f"unknown monitor status {status!r}: use one of {list(STATUSES)}")
    if not check or len(check) > 32:
        raise ValueError(f"a check name must be 1-32 characters, not {check!r}")
    return {
        "model": model,
        "version": version,
        "window_start": window[0],
        "window_end": window[1],
        "check_name": check,
        "status": status,
        "result": result,
        "created_at": now,
    }


def _result(row: Any) -> MonitorResult:
    return MonitorResult(
        id=int(row["id"]),
        model=row["model"],
        version=int(row["version"]),
        window_start=row["window_start"],
        window_end=row["window_end"],
        check=row["check_name"],
        status=row["status"],
        result=dict(row["result"]),
        created_at=row["created_at"],
    )
