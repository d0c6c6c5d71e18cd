"""Holdout evaluation of a fitted model: metrics, curves and feature importance.

This module owns the numbers a model package reports about its own quality:
the metric set per task, the diagnostic extras (confusion matrix, ROC and PR
curves, calibration, residuals), which metric is primary for a task and in
which direction each metric improves. Everything it returns is plain
JSON-serialisable data, because reports are written verbatim into model
packages; undefined values are omitted (metrics) or ``None`` (extras), never
NaN or infinity.

sklearn is imported inside functions so that ``import atoll`` stays light.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

TASKS = ("binary", "multiclass", "regression")
"""The tasks :func:`evaluate` understands."""

CURVE_POINTS = 101
"""Most points kept per curve: enough to plot, small enough for a JSON report."""

CALIBRATION_BINS = 10
"""Uniform probability bins of the calibration table."""

RESIDUAL_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
"""Residual quantiles reported for regression, keyed by ``str(q)``."""

_LOWER_IS_BETTER = frozenset(
    {"rmse", "mae", "log_loss", "brier", "median_absolute_error", "mape"},
)

_PRIMARY = {"binary": "roc_auc", "multiclass": "macro_f1", "regression": "rmse"}


def primary_metric(task: str) -> str:
    """Return the metric that ranks candidate models for ``task``.

    Raises:
        ValueError: ``task`` is not one of :data:`TASKS`.
    """
    _check_task(task)
    return _PRIMARY[task]


def higher_is_better(metric: str) -> bool:
    """Tell whether larger values of ``metric`` mean a better model.

    Losses, errors and every fairness ``*_difference`` shrink as a model
    improves; everything else (accuracy, AUC, F1, R², ratios) grows.
    """
    return metric not in _LOWER_IS_BETTER and not metric.endswith("_difference")


def headline(task: str, metrics: Mapping[str, float]) -> str:
    """One line for people: the task's primary metric, then accuracy or R²."""
    second = "r2" if task == "regression" else "accuracy"
    shown = [m for m in (primary_metric(task), second) if m in metrics]
    return ", ".join(f"{m} {metrics[m]:.4f}" for m in shown)


def evaluate(
    task: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    classes: list[Any],
) -> dict[str, Any]:
    """Compute the evaluation report of one set of holdout predictions.

    Args:
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        y_true: true targets; for classifiers, class indices ``0..k-1``.
        y_pred: predictions; for classifiers, class indices ``0..k-1``.
        proba: ``(n, k)`` class probabilities, or ``None`` when the model has
            none (probability-based metrics and extras are then left out).
        classes: the original labels, ``classes[i]`` for index ``i``; for
            binary tasks index 1 is the positive class. Unused for regression.

    Returns:
        ``{"task", "n_rows", "metrics": {name: float}, ...extras}``. A metric
        that is undefined on this data (e.g. ROC AUC with one class present)
        is omitted rather than reported as NaN.

    Raises:
        ValueError: unknown task, no rows, or arrays of different lengths.
    """
    _check_task(task)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    _check_lengths(y_true, y_pred, proba)
    if task == "regression":
        extras = _regression_report(y_true.astype(float), y_pred.astype(float))
    elif task == "binary":
        extras = _binary_report(y_true.astype(int), y_pred.astype(int), proba, classes)
    else:
        extras = _multiclass_report(y_true.astype(int), y_pred.astype(int), proba, classes)
    return {"task": task, "n_rows": int(y_true.shape[0]), **extras}


def feature_importance(estimator: Any, feature_names: list[str]) -> dict[str, float] | None:
    """Return the estimator's own importances, normalised to sum to 1.

    Tree ensembles (including the LightGBM and XGBoost sklearn wrappers)
    expose ``feature_importances_``; linear models expose ``coef_``, whose
    absolute value is used (averaged over rows for one-vs-rest models).
    Permutation importance is deliberately not computed here: it needs data
    and time, and belongs to the training pipeline.

    Args:
        estimator: a fitted estimator.
        feature_names: names of the columns the estimator was fitted on.

    Returns:
        ``{feature: share}`` sorted by descending share, or ``None`` when the
        estimator exposes neither attribute (e.g. HistGradientBoosting). When
        every importance is zero, every share is 0.0.

    Raises:
        ValueError: the number of importances differs from ``feature_names``.
    """
    raw = _raw_importances(estimator)
    if raw is None:
        return None
    if raw.shape[0] != len(feature_names):
        raise ValueError(
            f"estimator has {raw.shape[0]} importances but {len(feature_names)} feature names",
        )
    raw = np.where(np.isfinite(raw), raw, 0.0)
    total = float(raw.sum())
    shares = raw / total if total > 0 else np.zeros_like(raw)
    pairs = sorted(zip(feature_names, shares.tolist(), strict=True), key=lambda p: (-p[1], p[0]))
    return {name: float(share) for name, share in pairs}


def _raw_importances(estimator: Any) -> np.ndarray | None:
    """Read unnormalised non-negative importances, or ``None`` if there are none."""
    values = getattr(estimator, "feature_importances_", None)
    if values is not None:
        importances: np.ndarray = np.abs(np.asarray(values, dtype=float).ravel())
        return importances
    coef = getattr(estimator, "coef_", None)
    if coef is None:
        return None
    weights: np.ndarray = np.abs(np.asarray(coef, dtype=float))
    return weights.mean(axis=0) if weights.ndim == 2 else weights.ravel()


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")


def _check_lengths(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None) -> None:
    """Fail early with a clear message instead of deep inside sklearn."""
    n = y_true.shape[0]
    if n == 0:
        raise ValueError("cannot evaluate on zero rows")
    if y_pred.shape[0] != n or (proba is not None and np.shape(proba)[0] != n):
        raise ValueError("y_true, y_pred and proba must have the same number of rows")


@contextmanager
def quiet_metrics() -> Iterator[None]:
    """Silence warnings about metrics undefined on the data; callers report them as absent."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def finite(value: Any) -> float | None:
    """Return ``value`` as a float, or ``None`` when it is missing, NaN or infinite."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _safe(metric: Callable[..., Any], *args: Any, **kwargs: Any) -> float | None:
    """Compute one metric, turning "undefined on this data" into ``None``."""
    try:
        with quiet_metrics():
            return finite(metric(*args, **kwargs))
    except ValueError:
        return None


def _put(metrics: dict[str, float], name: str, value: float | None) -> None:
    """Record a metric only when it is defined, so reports never carry NaN."""
    if value is not None:
        metrics[name] = value


def _confusion(y_true: np.ndarray, y_pred: np.ndarray, classes: list[Any]) -> dict[str, Any]:
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(y_true, y_pred, labels=list(range(len(classes))))
    return {"labels": [str(label) for label in classes], "matrix": matrix.tolist()}


def _label_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Metrics every classifier gets from hard predictions alone."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    metrics: dict[str, float] = {}
    _put(metrics, "accuracy", _safe(accuracy_score, y_true, y_pred))
    _put(metrics, "balanced_accuracy", _safe(balanced_accuracy_score, y_true, y_pred))
    return metrics


def _binary_report(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, classes: list[Any]
) -> dict[str, Any]:
    from sklearn.metrics import f1_score, precision_score, recall_score

    metrics = _label_metrics(y_true, y_pred)
    for name, scorer in (("precision", precision_score), ("recall", recall_score)):
        _put(metrics, name, _safe(scorer, y_true, y_pred, pos_label=1, zero_division=0))
    _put(metrics, "f1", _safe(f1_score, y_true, y_pred, pos_label=1, zero_division=0))
    report: dict[str, Any] = {
        "metrics": metrics,
        "confusion_matrix": _confusion(y_true, y_pred, classes),
    }
    if proba is not None:
        report.update(_binary_proba_report(y_true, np.asarray(proba, dtype=float), metrics))
    return report


def _binary_proba_report(
    y_true: np.ndarray, proba: np.ndarray, metrics: dict[str, float]
) -> dict[str, Any]:
    """Add probability metrics to ``metrics``; return the curve and calibration extras.

    Ranking metrics and curves need both classes in ``y_true``; with one
    class they are undefined and left out.
    """
    from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

    score = proba[:, 1]
    _put(metrics, "log_loss", _safe(log_loss, y_true, proba, labels=[0, 1]))
    _put(metrics, "brier", finite(np.mean((score - y_true) ** 2)))
    extras: dict[str, Any] = {"calibration": _calibration(y_true, score)}
    if np.unique(y_true).size == 2:
        _put(metrics, "roc_auc", _safe(roc_auc_score, y_true, score))
        _put(metrics, "pr_auc", _safe(average_precision_score, y_true, score, pos_label=1))
        extras.update(_curves(y_true, score))
    return extras


def _curves(y_true: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    """ROC and precision-recall curves, downsampled to :data:`CURVE_POINTS`.

    sklearn's first ROC threshold is +inf ("predict nothing positive"); it is
    reported as ``None``. As in sklearn, the PR curve has one threshold fewer
    than points: its last point (recall 0, precision 1) has no threshold.
    """
    from sklearn.metrics import precision_recall_curve, roc_curve

    with quiet_metrics():
        fpr, tpr, roc_thresholds = roc_curve(y_true, score, pos_label=1)
        precision, recall, pr_thresholds = precision_recall_curve(y_true, score, pos_label=1)
    roc_keep = _downsample(fpr.shape[0])
    pr_keep = _downsample(precision.shape[0])
    pr_thr_keep = pr_keep[pr_keep < pr_thresholds.shape[0]]
    return {
        "roc_curve": {
            "fpr": _floats(fpr[roc_keep]),
            "tpr": _floats(tpr[roc_keep]),
            "thresholds": _floats(roc_thresholds[roc_keep]),
        },
        "pr_curve": {
            "precision": _floats(precision[pr_keep]),
            "recall": _floats(recall[pr_keep]),
            "thresholds": _floats(pr_thresholds[pr_thr_keep]),
        },
    }


def _downsample(length: int) -> np.ndarray:
    """Indices of at most :data:`CURVE_POINTS` evenly spread points, ends included."""
    if length <= CURVE_POINTS:
        return np.arange(length)
    return np.unique(np.round(np.linspace(0, length - 1, CURVE_POINTS)).astype(int))


def _floats(values: np.ndarray) -> list[float | None]:
    return [finite(value) for value in values.tolist()]


def _calibration(y_true: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    """Reliability table over uniform bins ``[i/10, (i+1)/10)``, the last one closed.

    Empty bins keep their place (count 0, ``None`` means) so tables from
    different models line up bin by bin.
    """
    edges = np.arange(CALIBRATION_BINS + 1) / CALIBRATION_BINS
    index = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, CALIBRATION_BINS - 1)
    counts = np.bincount(index, minlength=CALIBRATION_BINS)
    predicted = np.bincount(index, weights=score, minlength=CALIBRATION_BINS)
    positives = np.bincount(index, weights=y_true.astype(float), minlength=CALIBRATION_BINS)
    bins = [
        {
            "lower": float(edges[i]),
            "upper": float(edges[i + 1]),
            "count": int(counts[i]),
            "mean_predicted": finite(predicted[i] / counts[i]) if counts[i] else None,
            "fraction_positive": finite(positives[i] / counts[i]) if counts[i] else None,
        }
        for i in range(CALIBRATION_BINS)
    ]
    return {"bins": bins}


def _multiclass_report(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, classes: list[Any]
) -> dict[str, Any]:
    from sklearn.metrics import f1_score, log_loss, roc_auc_score

    labels = list(range(len(classes)))
    metrics = _label_metrics(y_true, y_pred)
    for average in ("macro", "weighted"):
        value = _safe(f1_score, y_true, y_pred, labels=labels, average=average, zero_division=0)
        _put(metrics, f"{average}_f1", value)
    if proba is not None:
        proba = np.asarray(proba, dtype=float)
        _put(metrics, "log_loss", _safe(log_loss, y_true, proba, labels=labels))
        value = _safe(roc_auc_score, y_true, proba, multi_class="ovr", labels=labels)
        _put(metrics, "roc_auc_ovr", value)
    return {"metrics": metrics, "confusion_matrix": _confusion(y_true, y_pred, classes)}


def _regression_report(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import (
        mean_absolute_error,
        mean_absolute_percentage_error,
        median_absolute_error,
        r2_score,
    )

    metrics: dict[str, float] = {}
    _put(metrics, "rmse", finite(np.sqrt(np.mean((y_true - y_pred) ** 2))))
    _put(metrics, "mae", _safe(mean_absolute_error, y_true, y_pred))
    # force_finite=False: a constant target makes R² undefined, not 0 or 1.
    _put(metrics, "r2", _safe(r2_score, y_true, y_pred, force_finite=False))
    _put(metrics, "median_absolute_error", _safe(median_absolute_error, y_true, y_pred))
    if not np.any(y_true == 0):
        # A fraction, not a percentage, as sklearn returns it.
        _put(metrics, "mape", _safe(mean_absolute_percentage_error, y_true, y_pred))
    return {"metrics": metrics, "residuals": _residuals(y_true - y_pred)}


def _residuals(residuals: np.ndarray) -> dict[str, Any]:
    """Summarise ``y_true - y_pred``: bias (mean), spread (population std) and tails."""
    quantiles = np.quantile(residuals, RESIDUAL_QUANTILES)
    return {
        "mean": finite(np.mean(residuals)),
        "std": finite(np.std(residuals)),
        "quantiles": {
            str(q): finite(v) for q, v in zip(RESIDUAL_QUANTILES, quantiles, strict=True)
        },
    }
