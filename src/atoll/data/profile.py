"""Reference profiles of training data and predictions, for drift monitoring.

This module owns the summary a model package keeps of what it was trained
on: per column, null counts plus quantile bins (numeric), top-category
frequencies (categorical) or the time range (datetime), and the distribution
of the model's own predictions. Drift monitoring later compares live data
against this profile without needing the training data itself.

Profiles are plain JSON-serialisable data (no numpy scalars, no NaN: undefined
values are ``None``) and are computed with vectorised numpy/pandas, so large
frames profile in well under a second.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

KINDS = ("numeric", "categorical", "datetime")
"""How a column can be profiled."""

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
"""Reported quantiles, keyed by ``str(q)``."""

SCORE_EDGES = np.arange(11) / 10
"""Uniform score-histogram edges 0.0, 0.1, ..., 1.0 (exact decimals, not linspace)."""


def profile_frame(
    frame: pd.DataFrame,
    kinds: Mapping[str, str],
    bins: int = 10,
    top_categories: int = 50,
) -> dict[str, Any]:
    """Profile the columns named in ``kinds``.

    Args:
        frame: the training data.
        kinds: column name -> ``"numeric"``, ``"categorical"`` or ``"datetime"``.
        bins: target number of equal-count bins for numeric columns.
        top_categories: how many of the most frequent categories to keep.

    Returns:
        ``{"rows": n, "columns": {name: profile}}``; see :func:`profile_numeric`,
        :func:`profile_categorical` and :func:`profile_datetime`.

    Raises:
        KeyError: a column in ``kinds`` is not in ``frame``.
        ValueError: an unknown kind, or ``bins`` / ``top_categories`` below 1.
    """
    if bins < 1 or top_categories < 1:
        raise ValueError("bins and top_categories must be at least 1")
    columns = {
        name: _profile_column(frame[name], kind, bins, top_categories)
        for name, kind in kinds.items()
    }
    return {"rows": len(frame), "columns": columns}


def profile_predictions(
    task: str,
    predictions: np.ndarray,
    proba: np.ndarray | None,
    classes: list[Any],
) -> dict[str, Any]:
    """Profile a model's predictions, so prediction drift can be watched too.

    Args:
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        predictions: for classifiers, class indices ``0..k-1`` (as in
            :func:`atoll.model.evaluate.evaluate`); for regression, values.
        proba: ``(n, k)`` class probabilities, or ``None``.
        classes: original labels, ``classes[i]`` for index ``i``.

    Returns:
        ``{"task", "rows", ...}``. Classifiers add ``class_frequencies``
        (``{str(label): count}``, every class present even at 0) and
        ``score_histogram`` (``{str(label): {"bin_edges", "bin_counts"}}`` over
        11 uniform edges 0..1; only the positive class for binary; ``None``
        without ``proba``). Regression adds the numeric profile of the
        predictions (see :func:`profile_numeric`).

    Raises:
        ValueError: unknown task.
    """
    predictions = np.asarray(predictions)
    head: dict[str, Any] = {"task": task, "rows": int(predictions.shape[0])}
    if task == "regression":
        return {**head, **profile_numeric(pd.Series(predictions, dtype="float64"))}
    if task not in ("binary", "multiclass"):
        raise ValueError(f"unknown task {task!r}; expected binary, multiclass or regression")
    counts = np.bincount(predictions.astype(int), minlength=len(classes))
    frequencies = {str(label): int(counts[i]) for i, label in enumerate(classes)}
    return {
        **head,
        "class_frequencies": frequencies,
        "score_histogram": _score_histograms(task, proba, classes),
    }


def profile_numeric(series: pd.Series, bins: int = 10) -> dict[str, Any]:
    """Profile a numeric column; NaN is null, ±inf is counted apart.

    Statistics and quantiles cover finite values only. ``bin_edges`` are
    deduplicated quantiles of the finite values, so bins hold roughly equal
    counts; a constant column gets ``[v, v]``. ``bin_counts`` count every
    non-null value: bins are ``[e_i, e_i+1)`` except the last, which is
    closed, and values beyond the ends (including ±inf) fall into the end
    bins, so the counts always sum to ``count``. Edges and counts are
    ``None`` when there is no finite value. ``std`` is the population
    standard deviation.
    """
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    # One sort serves quantiles, range and bin counts: far cheaper than
    # repeated np.quantile partitions and a per-value histogram.
    present = np.sort(values[~np.isnan(values)])
    finite = present[np.isfinite(present)]  # still sorted: -inf first, +inf last
    profile = _base("numeric", values.shape[0], present.shape[0])
    profile["inf_count"] = int(present.shape[0] - finite.shape[0])
    profile.update(_numeric_stats(finite))
    profile.update(_quantile_bins(present, finite, bins))
    return profile


def profile_categorical(series: pd.Series, top_categories: int = 50) -> dict[str, Any]:
    """Profile a categorical column by its most frequent categories.

    Only the ``top_categories`` most frequent categories are kept, so a
    high-cardinality column cannot bloat the package; ``other_count`` holds
    the rest and ``distinct`` how many categories there were. Category names
    are ``str(value)``.
    """
    counts = series.value_counts(dropna=True)
    counts = counts[counts > 0]  # a pandas Categorical also lists unused categories
    present = int(counts.sum())
    top = counts.iloc[:top_categories]
    pairs = sorted(zip(map(str, top.index), top.tolist(), strict=True), key=lambda p: (-p[1], p[0]))
    profile = _base("categorical", len(series), present)
    profile["frequencies"] = {name: int(count) for name, count in pairs}
    profile["other_count"] = present - int(top.sum())
    profile["distinct"] = int(counts.shape[0])
    return profile


def profile_datetime(series: pd.Series) -> dict[str, Any]:
    """Profile a datetime column by its range, as ISO-8601 strings (``None`` if empty)."""
    present = series.dropna()
    profile = _base("datetime", len(series), len(present))
    empty = present.empty
    profile["min"] = None if empty else pd.Timestamp(present.min()).isoformat()
    profile["max"] = None if empty else pd.Timestamp(present.max()).isoformat()
    return profile


def _profile_column(series: pd.Series, kind: str, bins: int, top: int) -> dict[str, Any]:
    if kind == "numeric":
        return profile_numeric(series, bins)
    if kind == "categorical":
        return profile_categorical(series, top)
    if kind == "datetime":
        return profile_datetime(series)
    raise ValueError(f"unknown profile kind {kind!r} for column {series.name!r}")


def _base(kind: str, rows: int, present: int) -> dict[str, Any]:
    """The fields every column profile shares; ``count`` is the non-null count."""
    nulls = rows - present
    return {
        "kind": kind,
        "count": int(present),
        "null_count": int(nulls),
        "null_rate": nulls / rows if rows else None,
    }


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _sorted_quantiles(ordered: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Quantiles of an already sorted, non-empty array (numpy's default "linear" method)."""
    position = (ordered.shape[0] - 1) * q
    lower = np.floor(position).astype(int)
    upper = np.minimum(lower + 1, ordered.shape[0] - 1)
    fraction = position - lower
    result: np.ndarray = ordered[lower] + fraction * (ordered[upper] - ordered[lower])
    return result


def _numeric_stats(finite: np.ndarray) -> dict[str, Any]:
    """Range, moments and quantiles of the sorted finite values (all ``None`` if none)."""
    if finite.shape[0] == 0:
        return {"min": None, "max": None, "mean": None, "std": None, "quantiles": None}
    quantiles = _sorted_quantiles(finite, np.asarray(QUANTILES))
    return {
        "min": _finite(finite[0]),
        "max": _finite(finite[-1]),
        "mean": _finite(finite.mean()),
        "std": _finite(finite.std()),
        "quantiles": {str(q): _finite(v) for q, v in zip(QUANTILES, quantiles, strict=True)},
    }


def _quantile_bins(present: np.ndarray, finite: np.ndarray, bins: int) -> dict[str, Any]:
    """Equal-count bin edges from the finite values, and counts of all non-null values.

    Both arrays are sorted, so each bin count is a difference of insertion
    points: values below the first interior edge (``-inf`` included) land in
    the first bin, values at or above the last interior edge in the last.
    """
    if finite.shape[0] == 0:
        return {"bin_edges": None, "bin_counts": None}
    edges = np.unique(_sorted_quantiles(finite, np.linspace(0.0, 1.0, bins + 1)))
    if edges.shape[0] == 1:
        edges = np.repeat(edges, 2)
    cuts = np.searchsorted(present, edges[1:-1], side="left")
    counts = np.diff(np.concatenate(([0], cuts, [present.shape[0]])))
    return {"bin_edges": [float(e) for e in edges], "bin_counts": counts.tolist()}


def _score_histograms(
    task: str, proba: np.ndarray | None, classes: list[Any]
) -> dict[str, Any] | None:
    """Histograms of predicted class probabilities; binary keeps only the positive class."""
    if proba is None:
        return None
    proba = np.asarray(proba, dtype=float)
    indices = [1] if task == "binary" else range(len(classes))
    histograms: dict[str, Any] = {}
    for i in indices:
        scores = np.clip(proba[:, i], 0.0, 1.0)
        counts, _ = np.histogram(scores[~np.isnan(scores)], bins=SCORE_EDGES)
        histograms[str(classes[i])] = {
            "bin_edges": SCORE_EDGES.tolist(),
            "bin_counts": counts.tolist(),
        }
    return histograms
