"""Group fairness of holdout predictions across sensitive columns.

This module owns the fairness report stored in a model package and read by
promotion gates: per sensitive column, per-group rates, plus the disparity
summaries (demographic parity, equalized odds, disparate impact for binary
tasks; accuracy or MAE spread otherwise). Undefined values are ``None``,
never NaN, because the report is written to JSON.

fairlearn and sklearn are imported inside functions so that ``import atoll``
stays light.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from atoll.model.evaluate import finite, quiet_metrics

MISSING_GROUP = "<missing>"
"""Group name given to rows whose sensitive value is missing, so they are not dropped."""


def fairness_report(
    task: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    sensitive: Mapping[str, np.ndarray],
) -> dict[str, Any]:
    """Compute per-group metrics and disparities for each sensitive column.

    Args:
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        y_true: true targets; for classifiers, class indices (binary: 1 is positive).
        y_pred: predictions, in the same encoding as ``y_true``.
        sensitive: column name -> group value per row. Missing values form
            the group :data:`MISSING_GROUP`; group names are ``str(value)``.

    Returns:
        ``{"columns": {name: report}}``. A binary report holds ``groups``
        (``count``, ``selection_rate``, ``tpr``, ``fpr``, ``accuracy`` each),
        ``demographic_parity_difference``, ``equalized_odds_difference`` and
        ``disparate_impact_ratio``; a multiclass report per-group ``count`` and
        ``accuracy`` plus ``accuracy_difference``; a regression report
        per-group ``count`` and ``mae`` plus ``mae_difference``.

    Raises:
        ValueError: unknown task.
    """
    builders: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], dict[str, Any]]] = {
        "binary": _binary_column,
        "multiclass": partial(_spread_column, "accuracy"),
        "regression": partial(_spread_column, "mae"),
    }
    if task not in builders:
        raise ValueError(f"unknown task {task!r}; expected binary, multiclass or regression")
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    columns = {
        name: builders[task](y_true, y_pred, _groups(values)) for name, values in sensitive.items()
    }
    return {"columns": columns}


def fairness_metric(report: dict[str, Any], column: str, metric: str) -> float | None:
    """Look up one disparity, e.g. ``("sex", "demographic_parity_difference")``.

    Promotion gates call this; a column or metric absent from the report, or
    undefined on the data, gives ``None`` and the gate decides what that means.
    """
    value = report.get("columns", {}).get(column, {}).get(metric)
    return None if value is None else float(value)


def _groups(values: np.ndarray) -> np.ndarray:
    """Turn raw sensitive values into string group names, missing ones included."""
    series = pd.Series(np.asarray(values), dtype=object)
    names = series.map(str).to_numpy(dtype=object)
    names[series.isna().to_numpy()] = MISSING_GROUP
    return names


def _binary_column(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        demographic_parity_ratio,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score

    y_true, y_pred, groups, weight = _compressed(y_true.astype(int), y_pred.astype(int), groups)
    metrics = {
        "count": _count,
        "selection_rate": partial(selection_rate, pos_label=1),
        "tpr": partial(true_positive_rate, pos_label=1),
        "fpr": partial(false_positive_rate, pos_label=1),
        "accuracy": accuracy_score,
        "positives": _positives,
    }
    weighted = {"sample_weight": weight}
    with quiet_metrics():
        frame = MetricFrame(
            metrics=metrics,
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=groups,
            sample_params={name: weighted for name in metrics},
        )
        parity = demographic_parity_difference(
            y_true, y_pred, sensitive_features=groups, sample_weight=weight
        )
        ratio = demographic_parity_ratio(
            y_true, y_pred, sensitive_features=groups, sample_weight=weight
        )
    return {
        "groups": _binary_groups(frame.by_group),
        "demographic_parity_difference": finite(parity),
        "equalized_odds_difference": _equalized_odds(
            y_true, y_pred, groups, weight, frame.by_group
        ),
        "disparate_impact_ratio": finite(ratio),
    }


def _compressed(
    y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (group, true, predicted) rows, and how often each occurs.

    Classification metrics depend on these counts alone, while fairlearn loops
    over rows in Python; passing the counts as sample weights gives identical
    numbers at a cost that no longer grows with the number of rows.
    """
    frame = pd.DataFrame({"group": groups, "true": y_true, "pred": y_pred})
    counts = frame.value_counts(sort=False).reset_index()
    if len(counts) == 1:
        # fairlearn cannot take a single row; two halves of it weigh the same.
        counts = pd.concat([counts, counts], ignore_index=True)
        counts["count"] = counts["count"] / 2
    return (
        counts["true"].to_numpy(),
        counts["pred"].to_numpy(),
        counts["group"].to_numpy(dtype=object),
        counts["count"].to_numpy(dtype=np.float64),
    )


def _count(y_true: np.ndarray, y_pred: np.ndarray, sample_weight: np.ndarray) -> int:
    """Rows in a group: the sum of the compressed rows' weights."""
    return int(np.sum(sample_weight))


def _positives(y_true: np.ndarray, y_pred: np.ndarray, sample_weight: np.ndarray) -> int:
    """Rows whose true class is 1: the TPR denominator, to spot undefined rates."""
    return int(np.sum(sample_weight[np.asarray(y_true) == 1]))


def _binary_groups(by_group: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per-group rates, with TPR/FPR ``None`` where the group lacks positives/negatives.

    fairlearn reports 0.0 for a rate whose denominator is empty; that would
    read as "never detects" or "never false-alarms", so it is replaced.
    """
    groups: dict[str, dict[str, Any]] = {}
    for name, row in by_group.iterrows():
        total, positives = int(row["count"]), int(row["positives"])
        groups[str(name)] = {
            "count": total,
            "selection_rate": finite(row["selection_rate"]),
            "tpr": finite(row["tpr"]) if positives > 0 else None,
            "fpr": finite(row["fpr"]) if positives < total else None,
            "accuracy": finite(row["accuracy"]),
        }
    return groups


def _equalized_odds(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: np.ndarray,
    weight: np.ndarray,
    by_group: pd.DataFrame,
) -> float | None:
    """Equalized odds difference over the groups where both TPR and FPR are defined.

    A group with no positives (or no negatives) has no TPR (or FPR); counting
    fairlearn's placeholder 0.0 for it would invent a disparity, so its rows
    are left out. ``None`` when no group has both classes.
    """
    from fairlearn.metrics import equalized_odds_difference

    defined = by_group.index[
        (by_group["positives"] > 0) & (by_group["positives"] < by_group["count"])
    ]
    keep = np.isin(groups, np.asarray(defined, dtype=object))
    if not keep.any():
        return None
    with quiet_metrics():
        value = equalized_odds_difference(
            y_true[keep], y_pred[keep], sensitive_features=groups[keep], sample_weight=weight[keep]
        )
    return finite(value)


def _spread_column(
    metric: str, y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray
) -> dict[str, Any]:
    """Per-group ``count`` and ``metric`` (accuracy or mae) and their max-min spread."""
    from fairlearn.metrics import MetricFrame
    from sklearn.metrics import accuracy_score, mean_absolute_error

    if metric == "accuracy":
        scorer, (y_true, y_pred, groups, weight) = (
            accuracy_score,
            _compressed(y_true, y_pred, groups),
        )
    else:
        scorer, weight = mean_absolute_error, np.ones(len(y_true))
    weighted = {"sample_weight": weight}
    with quiet_metrics():
        frame = MetricFrame(
            metrics={"count": _count, metric: scorer},
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=groups,
            sample_params={"count": weighted, metric: weighted},
        )
        spread = frame.difference()[metric]
    groups_report = {
        str(name): {"count": int(row["count"]), metric: finite(row[metric])}
        for name, row in frame.by_group.iterrows()
    }
    return {"groups": groups_report, f"{metric}_difference": finite(spread)}
