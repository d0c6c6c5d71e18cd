from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_percentage_error,
    r2_score,
    roc_auc_score,
)

from atoll.model.evaluate import (
    evaluate,
    feature_importance,
    higher_is_better,
    primary_metric,
)


def _dumps(report: dict[str, Any]) -> str:
    return json.dumps(report, allow_nan=False)


def _proba(score: np.ndarray) -> np.ndarray:
    return np.column_stack([1 - score, score])


def _binary_example() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y_true = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 0])
    score = np.array([0.1, 0.4, 0.35, 0.8, 0.7, 0.9, 0.2, 0.65, 0.55, 0.05])
    y_pred = (score >= 0.5).astype(int)
    return y_true, y_pred, score


def test_perfect_binary_classifier_scores_one() -> None:
    y = np.array([0, 1, 0, 1, 1, 0])
    score = np.array([0.1, 0.9, 0.2, 0.8, 0.7, 0.3])
    report = evaluate("binary", y, y, _proba(score), ["no", "yes"])
    metrics = report["metrics"]
    assert report["task"] == "binary"
    assert report["n_rows"] == 6
    for name in ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc"):
        assert metrics[name] == pytest.approx(1.0), name
    assert metrics["brier"] == pytest.approx(np.mean((score - y) ** 2))
    _dumps(report)


def test_binary_metrics_match_sklearn() -> None:
    y_true, y_pred, score = _binary_example()
    metrics = evaluate("binary", y_true, y_pred, _proba(score), [False, True])["metrics"]
    # Hand count: TP=4 (0.7, 0.9, 0.65, 0.55), FP=1 (0.8), FN=1 (0.2), TN=4.
    assert metrics["accuracy"] == pytest.approx(0.8)
    assert metrics["precision"] == pytest.approx(4 / 5)
    assert metrics["recall"] == pytest.approx(4 / 5)
    assert metrics["f1"] == pytest.approx(f1_score(y_true, y_pred))
    assert metrics["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y_true, score))
    assert metrics["pr_auc"] == pytest.approx(average_precision_score(y_true, score))
    assert metrics["log_loss"] == pytest.approx(log_loss(y_true, _proba(score)))
    assert metrics["brier"] == pytest.approx(float(np.mean((score - y_true) ** 2)))


def test_binary_confusion_matrix_counts_and_string_labels() -> None:
    y_true, y_pred, score = _binary_example()
    report = evaluate("binary", y_true, y_pred, _proba(score), [False, True])
    assert report["confusion_matrix"] == {
        "labels": ["False", "True"],
        "matrix": [[4, 1], [1, 4]],
    }


def test_binary_curves_are_json_safe_and_start_with_undefined_threshold() -> None:
    y_true, y_pred, score = _binary_example()
    report = evaluate("binary", y_true, y_pred, _proba(score), [0, 1])
    roc = report["roc_curve"]
    assert len(roc["fpr"]) == len(roc["tpr"]) == len(roc["thresholds"])
    assert roc["fpr"][0] == 0.0 and roc["fpr"][-1] == 1.0
    assert roc["tpr"][-1] == 1.0
    assert roc["thresholds"][0] is None  # sklearn's +inf
    pr = report["pr_curve"]
    assert len(pr["precision"]) == len(pr["recall"]) == len(pr["thresholds"]) + 1
    assert pr["recall"][0] == 1.0 and pr["recall"][-1] == 0.0
    _dumps(report)


def test_curves_are_downsampled_to_101_points_keeping_the_ends() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, 5000)
    score = np.clip(y_true * 0.3 + rng.random(5000) * 0.7, 0, 1)
    report = evaluate("binary", y_true, (score > 0.5).astype(int), _proba(score), [0, 1])
    roc, pr = report["roc_curve"], report["pr_curve"]
    assert 2 < len(roc["fpr"]) <= 101
    assert len(pr["precision"]) == 101
    assert len(pr["thresholds"]) == 100
    assert (roc["fpr"][0], roc["fpr"][-1]) == (0.0, 1.0)
    assert (pr["recall"][0], pr["recall"][-1]) == (1.0, 0.0)
    assert pr["thresholds"] == sorted(pr["thresholds"])


def test_calibration_bins() -> None:
    y_true = np.array([0, 1, 1, 0, 1])
    score = np.array([0.05, 0.15, 0.3, 0.95, 1.0])
    report = evaluate("binary", y_true, (score >= 0.5).astype(int), _proba(score), [0, 1])
    bins = report["calibration"]["bins"]
    assert len(bins) == 10
    assert [b["count"] for b in bins] == [1, 1, 0, 1, 0, 0, 0, 0, 0, 2]
    assert (bins[0]["lower"], bins[0]["upper"]) == (0.0, 0.1)
    assert bins[3]["lower"] == 0.3  # 0.3 lands in [0.3, 0.4), not below it
    assert bins[2] == {
        "lower": 0.2,
        "upper": 0.3,
        "count": 0,
        "mean_predicted": None,
        "fraction_positive": None,
    }
    assert bins[9]["mean_predicted"] == pytest.approx(0.975)
    assert bins[9]["fraction_positive"] == pytest.approx(0.5)
    assert sum(b["count"] for b in bins) == 5


def test_single_class_binary_omits_undefined_metrics_without_raising() -> None:
    y_true = np.zeros(4, dtype=int)
    y_pred = np.array([0, 0, 1, 0])
    score = np.array([0.1, 0.2, 0.6, 0.3])
    report = evaluate("binary", y_true, y_pred, _proba(score), ["a", "b"])
    metrics = report["metrics"]
    assert "roc_auc" not in metrics
    assert "pr_auc" not in metrics
    assert "roc_curve" not in report
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["log_loss"] == pytest.approx(log_loss(y_true, _proba(score), labels=[0, 1]))
    assert metrics["precision"] == 0.0
    _dumps(report)


def test_binary_without_proba_reports_label_metrics_only() -> None:
    y_true, y_pred, _ = _binary_example()
    report = evaluate("binary", y_true, y_pred, None, [0, 1])
    assert set(report["metrics"]) == {"accuracy", "balanced_accuracy", "precision", "recall", "f1"}
    assert "calibration" not in report


def test_multiclass_metrics_and_confusion_matrix() -> None:
    y_true = np.array([0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0, 2])
    proba = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.3, 0.6, 0.1],
            [0.1, 0.8, 0.1],
            [0.2, 0.7, 0.1],
            [0.1, 0.1, 0.8],
            [0.5, 0.2, 0.3],
            [0.2, 0.2, 0.6],
        ]
    )
    report = evaluate("multiclass", y_true, y_pred, proba, ["cat", "dog", 3])
    metrics = report["metrics"]
    assert metrics["accuracy"] == pytest.approx(5 / 7)
    assert metrics["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert metrics["weighted_f1"] == pytest.approx(f1_score(y_true, y_pred, average="weighted"))
    assert metrics["log_loss"] == pytest.approx(log_loss(y_true, proba))
    assert metrics["roc_auc_ovr"] == pytest.approx(roc_auc_score(y_true, proba, multi_class="ovr"))
    assert report["confusion_matrix"] == {
        "labels": ["cat", "dog", "3"],
        "matrix": [[1, 1, 0], [0, 2, 0], [1, 0, 2]],
    }
    _dumps(report)


def test_multiclass_with_missing_class_omits_roc_auc_ovr() -> None:
    y_true = np.array([0, 1, 0, 1])
    y_pred = np.array([0, 1, 2, 1])
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.2, 0.5], [0.2, 0.7, 0.1]])
    report = evaluate("multiclass", y_true, y_pred, proba, ["a", "b", "c"])
    assert "roc_auc_ovr" not in report["metrics"]
    assert report["metrics"]["accuracy"] == pytest.approx(0.75)
    assert report["confusion_matrix"]["matrix"][0] == [1, 0, 1]
    _dumps(report)


def test_regression_metrics_and_residuals() -> None:
    y_true = np.array([1.0, 2.0, 3.0, 4.0])
    y_pred = np.array([1.5, 2.0, 2.0, 4.0])
    report = evaluate("regression", y_true, y_pred, None, [])
    metrics = report["metrics"]
    assert metrics["rmse"] == pytest.approx(math.sqrt((0.25 + 0 + 1 + 0) / 4))
    assert metrics["mae"] == pytest.approx(1.5 / 4)
    assert metrics["median_absolute_error"] == pytest.approx(0.25)
    assert metrics["r2"] == pytest.approx(r2_score(y_true, y_pred))
    assert metrics["mape"] == pytest.approx(mean_absolute_percentage_error(y_true, y_pred))
    residuals = report["residuals"]
    assert residuals["mean"] == pytest.approx(0.125)  # y_true - y_pred = [-0.5, 0, 1, 0]
    assert residuals["std"] == pytest.approx(float(np.std([-0.5, 0, 1, 0])))
    assert set(residuals["quantiles"]) == {"0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99"}
    assert residuals["quantiles"]["0.5"] == pytest.approx(0.0)
    _dumps(report)


def test_regression_omits_mape_with_zero_targets_and_r2_for_constant_target() -> None:
    report = evaluate("regression", np.array([0.0, 0.0, 0.0]), np.array([0.1, -0.1, 0.0]), None, [])
    assert "mape" not in report["metrics"]
    assert "r2" not in report["metrics"]
    assert report["metrics"]["mae"] == pytest.approx(0.2 / 3)
    _dumps(report)


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown task"):
        evaluate("ranking", np.array([1]), np.array([1]), None, [])
    with pytest.raises(ValueError, match="zero rows"):
        evaluate("regression", np.array([]), np.array([]), None, [])
    with pytest.raises(ValueError, match="same number of rows"):
        evaluate("regression", np.array([1.0, 2.0]), np.array([1.0]), None, [])


def test_feature_importance_from_tree_model() -> None:
    rng = np.random.default_rng(1)
    x = rng.random((200, 3))
    y = (x[:, 2] > 0.5).astype(int)
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(x, y)
    importance = feature_importance(model, ["a", "b", "c"])
    assert importance is not None
    assert next(iter(importance)) == "c"
    assert sum(importance.values()) == pytest.approx(1.0)
    assert list(importance.values()) == sorted(importance.values(), reverse=True)
    assert all(type(v) is float for v in importance.values())


def test_feature_importance_from_linear_coefficients() -> None:
    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    y = -4.0 * x[:, 0] + 1.0 * x[:, 1]
    model = LinearRegression().fit(x, y)
    importance = feature_importance(model, ["x0", "x1"])
    assert importance == pytest.approx({"x0": 0.8, "x1": 0.2})
    assert list(importance or {}) == ["x0", "x1"]


def test_feature_importance_averages_multiclass_coefficient_rows() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(150, 2))
    y = rng.integers(0, 3, 150)
    model = LogisticRegression().fit(x, y)
    expected = np.abs(model.coef_).mean(axis=0)
    expected = expected / expected.sum()
    importance = feature_importance(model, ["p", "q"])
    assert importance is not None
    assert importance["p"] == pytest.approx(expected[0])
    assert importance["q"] == pytest.approx(expected[1])


def test_feature_importance_none_without_attributes_and_error_on_name_mismatch() -> None:
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    assert feature_importance(HistGradientBoostingClassifier(max_iter=3).fit(x, y), ["x"]) is None
    with pytest.raises(ValueError, match="feature names"):
        feature_importance(LinearRegression().fit(x, y), ["x", "extra"])


def test_primary_metric_and_direction() -> None:
    assert primary_metric("binary") == "roc_auc"
    assert primary_metric("multiclass") == "macro_f1"
    assert primary_metric("regression") == "rmse"
    with pytest.raises(ValueError):
        primary_metric("clustering")
    for metric in ("rmse", "mae", "log_loss", "brier", "median_absolute_error", "mape"):
        assert higher_is_better(metric) is False, metric
    assert higher_is_better("demographic_parity_difference") is False
    assert higher_is_better("accuracy_difference") is False
    for metric in ("roc_auc", "accuracy", "macro_f1", "r2", "disparate_impact_ratio"):
        assert higher_is_better(metric) is True, metric
