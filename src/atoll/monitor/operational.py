"""Operational health of a window from the prediction log: latency percentiles and throughput.

Latencies are folded into a fixed log-scale histogram (20 bins per decade,
1 µs to 1,000 s), so percentiles are estimates within about 6% of the true
value, in bounded memory. The log holds answered predictions only: failed
requests are counted by the server's ``/metrics`` (``atoll_prediction_errors_total``),
so no error rate is reported here. Rows scored by ``atoll predict`` answered
no request: they come without a latency (NaN) and are counted apart, so the
rows and rates here are the served traffic's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from atoll.monitor.status import NO_DATA

EDGES_MS = np.logspace(-3, 6, 9 * 20 + 1)
"""Latency bin edges in milliseconds."""

PERCENTILES = (50, 90, 95, 99)


@dataclass
class LatencyFold:
    """Counts of latencies per log-scale bin."""

    rows: int = 0
    batch_rows: int = 0
    counts: np.ndarray = field(default_factory=lambda: np.zeros(EDGES_MS.shape[0] + 1, np.int64))

    def add(self, latencies_ms: np.ndarray) -> None:
        """Fold latencies; a NaN is a batch-scored row, counted but not a latency."""
        values = np.asarray(latencies_ms, dtype=float)
        batch = np.isnan(values)
        if batch.any():
            self.batch_rows += int(np.count_nonzero(batch))
            values = values[~batch]
        self.rows += values.shape[0]
        index = np.searchsorted(EDGES_MS, values, side="right")
        self.counts += np.bincount(index, minlength=self.counts.shape[0])

    def percentile(self, q: float) -> float:
        """The geometric middle of the bin holding the ``q``-th percentile (ms)."""
        rank = q / 100 * self.rows
        index = int(np.searchsorted(np.cumsum(self.counts), max(rank, 1), side="left"))
        lower = EDGES_MS[max(index - 1, 0)]
        upper = EDGES_MS[min(index, EDGES_MS.shape[0] - 1)]
        return float(np.sqrt(lower * upper))


def operational_report(
    fold: LatencyFold, window: tuple[datetime | None, datetime | None]
) -> dict[str, Any]:
    """Rows, rows per second over the window, and latency percentiles (ms, binned estimates)."""
    if fold.rows == 0:
        result: dict[str, Any] = {"status": NO_DATA, "rows": 0, "batch_rows": fold.batch_rows}
        if fold.batch_rows:
            result["reason"] = "only rows scored in batch: no request latencies"
        return result
    start, end = window
    seconds = (end - start).total_seconds() if start and end else None
    return {
        "status": "ok",
        "rows": fold.rows,
        "batch_rows": fold.batch_rows,
        "window_s": seconds,
        "rows_per_s": fold.rows / seconds if seconds else None,
        "latency_ms": {f"p{q}": fold.percentile(q) for q in PERCENTILES},
        "errors": None,
    }
