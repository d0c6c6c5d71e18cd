from __future__ import annotations

import json

import numpy as np
import pytest
from fairlearn.metrics import equalized_odds_difference

from atoll.model.fairness import MISSING_GROUP, fairness_metric, fairness_report


def _two_groups() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Group a selects 2 of 4 (rate 0.5), group b selects 1 of 4 (rate 0.25).
    y_true = np.array([1, 0, 1, 0, 1, 1, 0, 0])
    y_pred = np.array([1, 1, 0, 0, 1, 0, 0, 0])
    sex = np.array(["a", "a", "a", "a", "b", "b", "b", "b"])
    return y_true, y_pred, sex


def test_binary_report_hand_computed() -> None:
    y_true, y_pred, sex = _two_groups()
    report = fairness_report("binary", y_true, y_pred, {"sex": sex})
    column = report["columns"]["sex"]
    assert column["demographic_parity_difference"] == pytest.approx(0.25)
    assert column["disparate_impact_ratio"] == pytest.approx(0.5)
    a, b = column["groups"]["a"], column["groups"]["b"]
    assert a == pytest.approx(
        {"count": 4, "selection_rate": 0.5, "tpr": 0.5, "fpr": 0.5, "accuracy": 0.5}
    )
    assert b == pytest.approx(
        {"count": 4, "selection_rate": 0.25, "tpr": 0.5, "fpr": 0.0, "accuracy": 0.75}
    )
    assert type(a["count"]) is int
    # TPR equal (0.5 vs 0.5), FPR differs by 0.5.
    assert column["equalized_odds_difference"] == pytest.approx(0.5)
    assert column["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y_true, y_pred, sensitive_features=sex)
    )
    json.dumps(report, allow_nan=False)


def test_group_without_positives_has_undefined_tpr_and_is_left_out_of_equalized_odds() -> None:
    y_true = np.array([1, 0, 1, 0, 0, 0, 0, 0])
    y_pred = np.array([1, 1, 0, 0, 0, 1, 0, 0])
    groups = np.array(["x", "x", "x", "x", "y", "y", "y", "y"])
    column = fairness_report("binary", y_true, y_pred, {"g": groups})["columns"]["g"]
    assert column["groups"]["y"]["tpr"] is None
    assert column["groups"]["y"]["fpr"] == pytest.approx(0.25)
    # Only group x has both classes, so there is no disparity to measure between groups.
    assert column["equalized_odds_difference"] == pytest.approx(0.0)
    json.dumps(column, allow_nan=False)


def test_nobody_selected_gives_undefined_ratio_not_nan() -> None:
    y_true = np.array([1, 0, 1, 0])
    y_pred = np.zeros(4, dtype=int)
    groups = np.array(["a", "a", "b", "b"])
    column = fairness_report("binary", y_true, y_pred, {"g": groups})["columns"]["g"]
    assert column["disparate_impact_ratio"] is None
    assert column["demographic_parity_difference"] == pytest.approx(0.0)
    json.dumps(column, allow_nan=False)


def test_no_group_with_both_classes_gives_none_equalized_odds() -> None:
    y_true = np.array([1, 1, 0, 0])
    y_pred = np.array([1, 0, 0, 1])
    groups = np.array(["pos", "pos", "neg", "neg"])
    column = fairness_report("binary", y_true, y_pred, {"g": groups})["columns"]["g"]
    assert column["equalized_odds_difference"] is None
    assert column["groups"]["pos"]["fpr"] is None
    assert column["groups"]["neg"]["tpr"] is None


def test_missing_sensitive_values_form_their_own_group() -> None:
    y_true = np.array([1, 0, 1, 0, 1])
    y_pred = np.array([1, 0, 1, 1, 0])
    region = np.array(["north", None, "north", np.nan, "south"], dtype=object)
    column = fairness_report("binary", y_true, y_pred, {"region": region})["columns"]["region"]
    assert set(column["groups"]) == {"north", "south", MISSING_GROUP}
    assert column["groups"][MISSING_GROUP]["count"] == 2
    assert column["groups"][MISSING_GROUP]["selection_rate"] == pytest.approx(0.5)


def test_several_columns_and_numeric_group_values() -> None:
    y_true, y_pred, sex = _two_groups()
    age = np.array([1, 2, 1, 2, 1, 2, 1, 2])
    report = fairness_report("binary", y_true, y_pred, {"sex": sex, "age": age})
    assert set(report["columns"]) == {"sex", "age"}
    assert set(report["columns"]["age"]["groups"]) == {"1", "2"}


def test_multiclass_accuracy_difference() -> None:
    y_true = np.array([0, 1, 2, 0, 1, 2])
    y_pred = np.array([0, 1, 2, 0, 2, 1])
    groups = np.array(["a", "a", "a", "b", "b", "b"])
    column = fairness_report("multiclass", y_true, y_pred, {"g": groups})["columns"]["g"]
    assert column["groups"]["a"] == {"count": 3, "accuracy": 1.0}
    assert column["groups"]["b"]["accuracy"] == pytest.approx(1 / 3)
    assert column["accuracy_difference"] == pytest.approx(2 / 3)


def test_regression_mae_difference() -> None:
    y_true = np.array([1.0, 2.0, 3.0, 4.0])
    y_pred = np.array([1.0, 3.0, 3.0, 7.0])
    groups = np.array(["a", "a", "b", "b"])
    column = fairness_report("regression", y_true, y_pred, {"g": groups})["columns"]["g"]
    assert column["groups"]["a"] == pytest.approx({"count": 2, "mae": 0.5})
    assert column["groups"]["b"] == pytest.approx({"count": 2, "mae": 1.5})
    assert column["mae_difference"] == pytest.approx(1.0)
    json.dumps(column, allow_nan=False)


def test_fairness_metric_lookup() -> None:
    y_true, y_pred, sex = _two_groups()
    report = fairness_report("binary", y_true, y_pred, {"sex": sex})
    assert fairness_metric(report, "sex", "demographic_parity_difference") == pytest.approx(0.25)
    assert fairness_metric(report, "sex", "disparate_impact_ratio") == pytest.approx(0.5)
    assert fairness_metric(report, "race", "demographic_parity_difference") is None
    assert fairness_metric(report, "sex", "no_such_metric") is None


def test_unknown_task_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown task"):
        fairness_report("ranking", np.array([1]), np.array([1]), {"g": np.array(["a"])})


def test_counts_as_weights_match_fairlearn_on_raw_rows() -> None:
    """The report compresses rows to (group, true, pred) counts; numbers must not move."""
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    rng = np.random.default_rng(3)
    n = 5000
    groups = rng.choice(np.array(["a", "b", "c"], dtype=object), n)
    y_true = rng.integers(0, 2, n)
    y_pred = np.where(rng.random(n) < 0.7, y_true, 1 - y_true) * (groups != "c") + (groups == "c")
    report = fairness_report("binary", y_true, y_pred, {"g": groups})["columns"]["g"]
    raw_parity = demographic_parity_difference(y_true, y_pred, sensitive_features=groups)
    raw_odds = equalized_odds_difference(y_true, y_pred, sensitive_features=groups)
    assert report["demographic_parity_difference"] == pytest.approx(raw_parity, abs=1e-12)
    assert report["equalized_odds_difference"] == pytest.approx(raw_odds, abs=1e-12)
    for name in ("a", "b", "c"):
        rows = groups == name
        assert report["groups"][name]["count"] == rows.sum()
        expected = float(np.mean(y_pred[rows] == y_true[rows]))
        assert report["groups"][name]["accuracy"] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_a_single_group_with_a_single_outcome_does_not_crash(task: str) -> None:
    ones = np.zeros(3, dtype=int)
    report = fairness_report(task, ones, ones, {"s": np.array(["a"] * 3, dtype=object)})
    group = report["columns"]["s"]["groups"]["a"]
    assert group["count"] == 3
    assert group["accuracy"] == 1.0
