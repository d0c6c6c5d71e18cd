"""The monitoring report of one window: every check's result, JSON-serialisable.

An empty window is a result, not an error: every check says ``no_data`` and
no statistic is NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from atoll.monitor.status import NO_DATA, worst

CHECKS = ("drift", "quality", "performance", "fairness", "operational")
"""The checks a report holds, in the order they are shown."""


@dataclass(frozen=True)
class Report:
    """What one window of traffic (or one data file) says about a model version.

    Attributes:
        model: the model's name.
        version: the version whose reference the window was judged against.
        source: ``"log"`` or the data file read.
        window_start: the first moment of the window (``None``: unbounded or a file).
        window_end: the end of the window, exclusive (``None``: unbounded or a file).
        rows: rows in the window (of a data file: rows read, rejected ones included).
        checks: check name -> result, each with a ``status``.
        feedback_unmatched: feedback received in the window for prediction ids
            the log does not hold (never counted in a metric); ``None`` for a file.
        created_at: when the report was computed.
    """

    model: str
    version: int
    source: str
    window_start: datetime | None
    window_end: datetime | None
    rows: int
    checks: dict[str, dict[str, Any]]
    feedback_unmatched: int | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def status(self) -> str:
        """The worst status over the checks; ``no_data`` when the window was empty."""
        if self.rows == 0:
            return NO_DATA
        return worst(check["status"] for check in self.checks.values())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: datetimes as ISO-8601 text, no NaN anywhere."""
        return {
            "model": self.model,
            "version": self.version,
            "source": self.source,
            "window_start": _iso(self.window_start),
            "window_end": _iso(self.window_end),
            "rows": self.rows,
            "status": self.status,
            "feedback_unmatched": self.feedback_unmatched,
            "created_at": _iso(self.created_at),
            "checks": _plain(self.checks),
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _plain(value: Any) -> Any:
    """JSON-ready copy: numpy scalars to Python numbers, non-finite floats to ``None``."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return value
