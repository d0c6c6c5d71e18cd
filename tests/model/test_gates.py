"""Promotion gates: bounds on metrics and fairness, names checked before training."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from atoll.errors import SpecError
from atoll.model.fairness import fairness_report
from atoll.model.gates import (
    FAIRNESS_METRICS,
    TASK_METRICS,
    GateResult,
    check_gate_names,
    check_gates,
)
from atoll.spec import Gate
from atoll.types import Task

METRICS = {"roc_auc": 0.81, "accuracy": 0.74, "log_loss": 0.52}


def _gate(metric: str, **bounds: Any) -> Gate:
    return Gate(metric=metric, **bounds)


def _one(gate: Gate, metrics: dict[str, float] | None = None, fairness: Any = None) -> GateResult:
    (result,) = check_gates([gate], METRICS if metrics is None else metrics, fairness or {})
    return result


@pytest.mark.parametrize(
    ("gate", "passed"),
    [
        (_gate("roc_auc", min=0.8), True),
        (_gate("roc_auc", min=0.81), True),  # bounds are inclusive
        (_gate("roc_auc", min=0.82), False),
        (_gate("log_loss", max=0.6), True),
        (_gate("log_loss", max=0.52), True),
        (_gate("log_loss", max=0.5), False),
        (_gate("accuracy", min=0.7, max=0.8), True),
        (_gate("accuracy", min=0.75, max=0.8), False),
        (_gate("accuracy", min=0.7, max=0.73), False),
    ],
)
def test_min_and_max_bounds(gate: Gate, passed: bool) -> None:
    result = _one(gate)
    assert result.passed is passed
    assert result.value == METRICS[gate.metric]
    assert (result.metric, result.column, result.min, result.max) == (
        gate.metric,
        None,
        gate.min,
        gate.max,
    )


def test_a_metric_missing_from_the_report_fails_its_gate() -> None:
    result = _one(_gate("f1", min=0.0))
    assert result.value is None
    assert result.passed is False


@pytest.mark.parametrize("bounds", [{"min": 0.0}, {"max": 1.0}])
def test_a_nan_metric_fails_its_gate(bounds: dict[str, float]) -> None:
    assert _one(_gate("roc_auc", **bounds), {"roc_auc": math.nan}).passed is False


def test_every_gate_is_judged_in_order() -> None:
    gates = [_gate("roc_auc", min=0.9), _gate("accuracy", min=0.5), _gate("brier", max=0.3)]
    results = check_gates(gates, METRICS, {})
    assert [(r.metric, r.passed) for r in results] == [
        ("roc_auc", False),
        ("accuracy", True),
        ("brier", False),
    ]
    assert check_gates([], METRICS, {}) == []


def _fairness() -> dict[str, Any]:
    # Group a: selection rate 3/4; group b: 1/4 -> parity difference 0.5.
    y_true = np.array([1, 1, 0, 0, 1, 0, 0, 0])
    y_pred = np.array([1, 1, 1, 0, 1, 0, 0, 0])
    groups = np.array(["a", "a", "a", "a", "b", "b", "b", "b"])
    return fairness_report("binary", y_true, y_pred, {"sex": groups})


def test_fairness_gates_read_the_fairness_report() -> None:
    fairness = _fairness()
    expected = fairness["columns"]["sex"]["demographic_parity_difference"]
    assert expected == pytest.approx(0.5)

    loose = _one(_gate("demographic_parity_difference", column="sex", max=0.6), {}, fairness)
    tight = _one(_gate("demographic_parity_difference", column="sex", max=0.1), {}, fairness)

    assert (loose.value, loose.passed, loose.column) == (expected, True, "sex")
    assert (tight.value, tight.passed) == (expected, False)


def test_a_fairness_gate_ignores_a_same_named_plain_metric() -> None:
    metrics = {"demographic_parity_difference": 0.0}
    result = _one(_gate("demographic_parity_difference", column="sex", max=0.1), metrics, {})
    assert result.value is None
    assert result.passed is False


def test_a_fairness_gate_on_a_column_without_a_report_fails() -> None:
    result = _one(_gate("disparate_impact_ratio", column="age", min=0.8), {}, _fairness())
    assert result.value is None
    assert result.passed is False


def test_a_fairness_metric_that_could_not_be_computed_fails() -> None:
    fairness = {"columns": {"sex": {"disparate_impact_ratio": None}}}
    result = _one(_gate("disparate_impact_ratio", column="sex", min=0.8), {}, fairness)
    assert result.value is None
    assert result.passed is False


@pytest.mark.parametrize("task", list(Task))
def test_every_known_name_passes_the_name_check(task: Task) -> None:
    gates = [_gate(m, min=0.0) for m in sorted(TASK_METRICS[task])]
    gates += [_gate(m, column="sex", max=1.0) for m in sorted(FAIRNESS_METRICS[task])]
    check_gate_names(gates, task, sorted(TASK_METRICS[task]), ["sex"])


def test_unknown_gate_metric_names_are_refused_with_their_field_path() -> None:
    gates = [_gate("roc_auc", min=0.7), _gate("rmse", max=1.0), _gate("roc-auc", min=0.7)]
    with pytest.raises(SpecError) as caught:
        check_gate_names(gates, Task.BINARY, [], ["sex"])
    problems = caught.value.problems
    assert [field for field, _line, _text in problems] == ["gates[1].metric", "gates[2].metric"]
    assert "unknown metric 'rmse' for a binary task" in problems[0][2]
    assert "roc_auc" in problems[0][2]  # the known names are listed
    assert "gates[2].metric" in str(caught.value)


def test_a_fairness_gate_without_column_is_refused() -> None:
    gates = [_gate("accuracy", min=0.5), _gate("accuracy_difference", max=0.1)]
    with pytest.raises(SpecError, match=r"gates\[1\]\.column: a fairness gate needs 'column'"):
        check_gate_names(gates, Task.MULTICLASS, [], ["sex"])


def test_a_fairness_metric_of_another_task_is_unknown() -> None:
    with pytest.raises(SpecError, match=r"gates\[0\]\.metric: unknown metric 'mae_difference'"):
        check_gate_names([_gate("mae_difference", column="sex", max=1.0)], Task.BINARY, [], ["sex"])


def test_unknown_evaluate_metrics_are_refused_with_their_field_path() -> None:
    with pytest.raises(SpecError) as caught:
        check_gate_names([], Task.REGRESSION, ["rmse", "roc_auc", "r2", "demographic"], [])
    fields = [field for field, _line, _text in caught.value.problems]
    assert fields == ["evaluate.metrics[1]", "evaluate.metrics[3]"]


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(SpecError) as caught:
        check_gate_names(
            [_gate("nope", min=0.0), _gate("mae_difference", max=0.1)],
            Task.REGRESSION,
            ["nada"],
            ["sex"],
        )
    fields = [field for field, _line, _text in caught.value.problems]
    assert fields == ["gates[0].metric", "gates[1].column", "evaluate.metrics[0]"]


@pytest.mark.parametrize(
    ("result", "text"),
    [
        (
            GateResult("roc_auc", None, 0.7, None, 0.81234, True),
            "roc_auc = 0.8123 (needs >= 0.7)",
        ),
        (
            GateResult("demographic_parity_difference", "sex", None, 0.1, 0.05, True),
            "demographic_parity_difference[sex] = 0.05 (needs <= 0.1)",
        ),
        (
            GateResult("r2", None, 0.25, 0.9, 0.5, True),
            "r2 = 0.5 (needs >= 0.25 and <= 0.9)",
        ),
        (
            GateResult("f1", None, 0.5, None, None, False),
            "f1 = not computed (needs >= 0.5)",
        ),
    ],
)
def test_describe(result: GateResult, text: str) -> None:
    assert result.describe() == text


def test_a_result_serialises_to_a_plain_dict() -> None:
    result = _one(_gate("roc_auc", min=0.9))
    assert result.to_dict() == {
        "metric": "roc_auc",
        "column": None,
        "min": 0.9,
        "max": None,
        "value": 0.81,
        "passed": False,
    }


def test_a_column_on_a_plain_metric_is_refused() -> None:
    with pytest.raises(SpecError, match=r"gates\[0\]\.column: roc_auc is not a fairness metric"):
        check_gate_names([_gate("roc_auc", column="sex", min=0.5)], Task.BINARY, [], ["sex"])


def test_a_fairness_gate_on_an_unchecked_column_is_refused() -> None:
    gate = _gate("demographic_parity_difference", column="age", max=0.1)
    with pytest.raises(SpecError, match=r"gates\[0\]\.column: 'age' is not checked for fairness"):
        check_gate_names([gate], Task.BINARY, [], ["sex"])
