"""Drift of each column, and of the predictions, from binned counts against the reference.

Every statistic is computed from the window's counts per reference bin, so it
costs nothing to keep and is the same whatever the window's size:

- PSI (population stability index) on the reference bins, for every column;
- numeric columns: Kolmogorov-Smirnov D and the Wasserstein distance, both
  *binned estimates* (the reference keeps ~10 equal-count bins, not its rows):
  D is the largest gap between the two binned CDFs, Wasserstein is
  ``scipy.stats.wasserstein_distance`` over bin midpoints, divided by the
  reference standard deviation so one threshold fits every scale;
- categorical columns: Jensen-Shannon distance (base 2,
  ``scipy.spatial.distance.jensenshannon``) of category shares, with the
  chi-square test of ``scipy.stats.chi2_contingency`` beside it.

Verdicts come from effect sizes and the ``monitor.drift`` thresholds; p-values
are reported beside them only, since on large windows they flag everything.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from atoll.monitor.histogram import column_histogram
from atoll.monitor.reference import CategoricalReference, NumericReference
from atoll.monitor.status import NO_DATA, level, worst
from atoll.monitor.window import CategoricalFold, ColumnFold, InputsFold, NumericFold
from atoll.spec_monitor import DriftSpec

EPSILON = 1e-4
"""Floor of a bin's share in PSI, so an empty bin gives a large but finite term."""


def drift_report(fold: InputsFold, spec: DriftSpec) -> dict[str, Any]:
    """Drift of every reference column and of the predictions over one window.

    Returns:
        ``{"status", "drifted": [...], "warned": [...], "columns": {name: result},
        "prediction": result | None, "skipped": {name: why}}``.
    """
    columns = {name: column_drift(f, spec) for name, f in fold.columns.items()}
    for name in fold.absent:  # no row of the window held it: nothing to compare
        columns[name] = {**columns[name], "status": NO_DATA, "reason": "not in the window"}
    prediction = None if fold.prediction is None else column_drift(fold.prediction, spec)
    statuses = [c["status"] for c in columns.values()]
    if prediction is not None:
        statuses.append(prediction["status"])
    return {
        "status": worst(statuses),
        "drifted": sorted(n for n, c in columns.items() if c["status"] == "alert"),
        "warned": sorted(n for n, c in columns.items() if c["status"] == "warn"),
        "columns": columns,
        "prediction": prediction,
        "skipped": dict(fold.reference.skipped),
    }


def column_drift(fold: ColumnFold, spec: DriftSpec) -> dict[str, Any]:
    """The drift statistics of one column's fold, and its status."""
    observed = fold.counts.astype(float)
    n = int(observed.sum())
    head: dict[str, Any] = {
        "rows": n,
        "reference_rows": fold.reference.count,
        "histogram": column_histogram(fold),
    }
    if n < spec.min_rows:
        reason = "no rows" if n == 0 else f"{n} rows, fewer than monitor.drift.min_rows"
        return {**head, "status": NO_DATA, "reason": reason}
    actual = observed / n
    expected = fold.reference.expected
    head["psi"] = psi(actual, expected)
    if isinstance(fold, NumericFold):
        stats = _numeric(fold, observed, actual, spec)
    else:
        stats = _categorical(fold, observed, actual, spec)
    statuses = [level(head["psi"], spec.psi), *stats.pop("_statuses")]
    return {**head, **stats, "status": worst(statuses)}


def psi(actual: np.ndarray, expected: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins."""
    a = np.clip(actual, EPSILON, None)
    e = np.clip(expected, EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


def binned_ks(actual: np.ndarray, expected: np.ndarray) -> float:
    """Kolmogorov-Smirnov D between two binned distributions: the largest CDF gap at a bin edge."""
    return float(np.max(np.abs(np.cumsum(actual) - np.cumsum(expected))))


def _numeric(
    fold: NumericFold, observed: np.ndarray, actual: np.ndarray, spec: DriftSpec
) -> dict[str, Any]:
    from scipy.stats import kstwobign, wasserstein_distance

    reference: NumericReference = fold.reference
    d = binned_ks(actual, expected := reference.expected)
    m, n = reference.count, observed.sum()
    p_value = _optional(kstwobign.sf(d * math.sqrt(m * n / (m + n))))
    edges = reference.edges  # one more edge than bins, so at least two
    mids = (edges[:-1] + edges[1:]) / 2
    distance = float(wasserstein_distance(mids, mids, expected, actual))
    scale = reference.std if reference.std else None
    normed = None if scale is None else _optional(distance / scale)
    return {
        "kind": "numeric",
        "ks": d,
        "ks_p_value": p_value,
        "wasserstein": distance,
        "wasserstein_norm": normed,
        "_statuses": [level(d, spec.ks), level(normed, spec.wasserstein)],
    }


def _categorical(
    fold: CategoricalFold, observed: np.ndarray, actual: np.ndarray, spec: DriftSpec
) -> dict[str, Any]:
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chi2_contingency

    reference: CategoricalReference = fold.reference
    js = _optional(jensenshannon(actual, reference.expected, base=2))
    table = np.vstack([reference.expected * reference.count, observed])
    table = table[:, table.sum(axis=0) > 0]
    p_value = None
    if table.shape[1] > 1:
        p_value = _optional(chi2_contingency(table, correction=False).pvalue)
    return {
        "kind": "categorical",
        "js": js,
        "chi2_p_value": p_value,
        "_statuses": [level(js, spec.js)],
    }


def _optional(value: Any) -> float | None:
    """A p-value or ratio, ``None`` where undefined (never NaN in a report)."""
    number = float(value)
    return number if math.isfinite(number) else None
