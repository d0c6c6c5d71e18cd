"""A column's reference shares and window counts per bin, as plain data for charts.

The drift result of each column carries them (``histogram``), so a report,
and every stored result, can draw the reference and the current distribution
side by side without the package or the log at hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from atoll.monitor.reference import NumericReference

if TYPE_CHECKING:
    from atoll.monitor.window import ColumnFold

SHARE_DIGITS = 6
"""Decimals kept of a reference share: enough for any chart, short in JSON."""


def column_histogram(fold: ColumnFold) -> dict[str, Any]:
    """``{"edges" | "categories": [...], "reference": [shares], "current": [counts]}``.

    A numeric column has one more edge than bins; a categorical one names
    its buckets, ``<other>`` last.
    """
    reference = fold.reference
    shares = [round(float(s), SHARE_DIGITS) for s in reference.expected]
    counts = [int(c) for c in fold.counts]
    if isinstance(reference, NumericReference):
        return {"edges": reference.edges.tolist(), "reference": shares, "current": counts}
    return {"categories": list(reference.buckets), "reference": shares, "current": counts}
