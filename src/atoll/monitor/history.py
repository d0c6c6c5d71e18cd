"""A model version's stored check results, grouped back into one snapshot per window.

:func:`atoll.store.monitoring.save_results` stores one row per check; a
monitoring run writes all of its rows with the same time. The HTML report
draws drift, metrics and fairness over consecutive windows from these
snapshots, oldest first, without recomputing anything from the log. Only
windows of one length are set side by side: a 1-hour window beside a 1-day
one would show their sizes, not a trend.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from atoll.monitor.report import CHECKS, Report
from atoll.store.monitoring import MonitorResult, list_results

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

MAX_PAGES = 20
"""Pages of stored results read back looking for windows of the report's length."""

Key = tuple[int, datetime | None, datetime | None]
"""What names a window: the version judged, and the window's ends."""


@dataclass(frozen=True)
class Snapshot:
    """Every check's result for one window of the prediction log.

    Attributes:
        version: the version whose reference judged the window.
        window_start: the window's first moment (``None``: unbounded).
        window_end: the window's end, exclusive (``None``: unbounded).
        at: when the results were computed.
        checks: check name -> plain result (with its ``status``).
    """

    version: int
    window_start: datetime | None
    window_end: datetime | None
    at: datetime
    checks: dict[str, dict[str, Any]]

    @property
    def key(self) -> Key:
        return (self.version, self.window_start, self.window_end)

    @property
    def moment(self) -> datetime:
        """Where the window sits in time: its end, or when an unbounded one was computed."""
        return self.window_end or self.at


def window_history(engine: Engine, report: Report, windows: int) -> list[Snapshot]:
    """The last ``windows`` windows of the log like the report's, oldest first, ``report`` last.

    Like: of the same version and the same length. A report without a
    bounded window of the log (a data file, or the whole log) has no history.
    """
    length = _length(report.window_start, report.window_end)
    if report.source != "log" or length is None:
        return []
    page = windows * len(CHECKS)
    kept: list[MonitorResult] = []
    before: int | None = None
    for _ in range(MAX_PAGES):
        rows = list_results(
            engine,
            report.model,
            version=report.version,
            bounded=True,
            before_id=before,
            limit=page,
        )
        kept += [r for r in rows if _length(r.window_start, r.window_end) == length]
        if len(rows) < page or len(snapshots(kept)) > windows:
            break
        before = rows[-1].id
    return snapshots(kept, report)[-windows:]


def _length(start: datetime | None, end: datetime | None) -> timedelta | None:
    return None if start is None or end is None else end - start


def snapshots(results: Iterable[MonitorResult], report: Report | None = None) -> list[Snapshot]:
    """Stored results of the prediction log as snapshots, oldest first.

    A window checked more than once appears once, with its latest results.
    With ``report``, it is the last snapshot of its window: stored results of
    the same window (its own, when it was saved) give way to it, so a report
    run with ``save=False`` still appears once.
    """
    groups: dict[tuple[Key, datetime], dict[str, dict[str, Any]]] = {}
    for result in results:
        key = (result.version, result.window_start, result.window_end)
        groups.setdefault((key, result.created_at), {})[result.check] = {
            **result.result,
            "status": result.status,
        }
    newest: dict[Key, Snapshot] = {}
    for (key, at), checks in sorted(groups.items(), key=lambda item: item[0][1]):
        newest[key] = Snapshot(*key, at, checks)  # a window checked again: its latest results
    found = list(newest.values())
    if report is not None and report.source == "log":
        current = of_report(report)
        found = [s for s in found if s.key != current.key] + [current]
    return sorted(found, key=lambda s: (s.moment, s.at))


def of_report(report: Report) -> Snapshot:
    """A freshly computed report as a snapshot (plain JSON data, as if stored)."""
    return Snapshot(
        version=report.version,
        window_start=report.window_start,
        window_end=report.window_end,
        at=report.created_at,
        checks=report.to_dict()["checks"],
    )
