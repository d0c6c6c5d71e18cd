"""The compression table: one row per representation, and the rule that picks the winner.

The winner is the smallest representation whose metric drop is within the
budget and whose predictions stay within the tolerance of the native model's.
The native model is the baseline: when nothing beats it, nothing is chosen.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atoll._sizes import human_bytes

HEADERS = (
    "representation",
    "size",
    "model",
    "metric",
    "drop",
    "max diff",
    "load ms",
    "1-row us",
    "10k-row ms",
    "status",
)

BASELINE = "baseline"
SELECTED = "selected"
QUALIFIES = "qualifies"
OVER_BUDGET = "over budget"
OVER_TOLERANCE = "over tolerance"
NOT_BUILT = "not built"
FAILED = "failed"


@dataclass(frozen=True)
class Row:
    """What one representation costs, or why it has no numbers."""

    representation: str
    status: str
    reason: str = ""
    size_bytes: int | None = None
    model_bytes: int | None = None
    metric: float | None = None
    drop: float | None = None
    max_diff: float | None = None
    load_ms: float | None = None
    one_row_us: float | None = None
    rows_10k_ms: float | None = None

    def cells(self) -> list[str]:
        """The row as the table prints it (``-`` where there is no number; reasons go below)."""
        return [
            self.representation,
            human_bytes(self.size_bytes),
            human_bytes(self.model_bytes),
            _num(self.metric, "{:.4f}"),
            _num(self.drop, "{:+.4f}"),
            _num(self.max_diff, "{:.1e}"),
            _num(self.load_ms, "{:.1f}"),
            _num(self.one_row_us, "{:.0f}"),
            _num(self.rows_10k_ms, "{:.1f}"),
            self.status,
        ]


def _num(value: float | None, form: str) -> str:
    return "-" if value is None else form.format(value)


@dataclass(frozen=True)
class CompressReport:
    """Every representation tried, the budget they were held to, and the one selected."""

    metric: str
    target: str
    max_metric_drop: float
    tolerance: float
    holdout: dict[str, Any]
    rows: list[Row]
    selected: str | None = None
    package_dir: Path | None = None
    gates: dict[str, Any] | None = None
    """The selected package's gates, judged on its hold-out metrics (None: nothing selected)."""

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["package_dir"] = str(self.package_dir) if self.package_dir else None
        return out

    def notes(self) -> list[str]:
        """One line per row with a reason: why it was not built, failed or lost."""
        return [f"{row.representation}: {row.reason}" for row in self.rows if row.reason]

    def text(self) -> str:
        """A plain fixed-width table and its notes, for error messages and logs."""
        table = [list(HEADERS), *(row.cells() for row in self.rows)]
        widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in table]
        return "\n".join([*(line.rstrip() for line in lines), *self.notes()])


def judge(row: Row, max_metric_drop: float, tolerance: float) -> Row:
    """Mark a measured candidate as qualifying, over budget or over tolerance.

    Each bound is a test the number must pass (``<=``), so a NaN drop or
    difference never qualifies.
    """
    if row.drop is None or row.max_diff is None:
        return dataclasses.replace(row, status=FAILED, reason=row.reason or "no metric")
    if not row.drop <= max_metric_drop:
        reason = f"drop {_beyond(row.drop, '{:.4g}')} {max_metric_drop:g}"
        return dataclasses.replace(row, status=OVER_BUDGET, reason=reason)
    if not row.max_diff <= tolerance:
        reason = f"max diff {_beyond(row.max_diff, '{:.2g}')} {tolerance:g}"
        return dataclasses.replace(row, status=OVER_TOLERANCE, reason=reason)
    return dataclasses.replace(row, status=QUALIFIES)


def _beyond(value: float, form: str) -> str:
    """``0.5 >``, or for a NaN, that it is no number the bound can hold."""
    return "is NaN, not <=" if math.isnan(value) else f"{form.format(value)} >"


def select(rows: list[Row]) -> tuple[list[Row], str | None]:
    """Mark the smallest qualifying candidate, if it is smaller than the baseline."""
    baseline = next(row for row in rows if row.status == BASELINE)
    fit = [r for r in rows if r.status == QUALIFIES and r.size_bytes is not None]
    best = min(fit, key=lambda r: r.size_bytes or 0, default=None)
    if best is None or (best.size_bytes or 0) >= (baseline.size_bytes or 0):
        return rows, None
    marked = [
        dataclasses.replace(r, status=SELECTED, reason="") if r is best else _beaten(r, best)
        for r in rows
    ]
    return marked, best.representation


def _beaten(row: Row, best: Row) -> Row:
    if row.status != QUALIFIES:
        return row
    return dataclasses.replace(row, reason=f"larger than {best.representation}")
