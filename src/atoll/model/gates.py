"""Promotion gates: bounds a new version must meet before it may take an alias.

Gate metric names are checked against what the task computes *before*
training starts, so a typo fails in a second, not after an hour of fitting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from atoll.errors import SpecError
from atoll.model.fairness import fairness_metric
from atoll.spec import Gate
from atoll.types import Task

TASK_METRICS = {
    Task.BINARY: {
        "accuracy",
        "balanced_accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "pr_auc",
        "log_loss",
        "brier",
    },
    Task.MULTICLASS: {
        "accuracy",
        "balanced_accuracy",
        "macro_f1",
        "weighted_f1",
        "log_loss",
        "roc_auc_ovr",
    },
    Task.REGRESSION: {"rmse", "mae", "r2", "median_absolute_error", "mape"},
}
FAIRNESS_METRICS = {
    Task.BINARY: {
        "demographic_parity_difference",
        "equalized_odds_difference",
        "disparate_impact_ratio",
    },
    Task.MULTICLASS: {"accuracy_difference"},
    Task.REGRESSION: {"mae_difference"},
}


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict, with the value it saw."""

    metric: str
    column: str | None
    min: float | None
    max: float | None
    value: float | None
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        bound = " and ".join(
            f"{op} {v:g}" for op, v in ((">=", self.min), ("<=", self.max)) if v is not None
        )
        where = f"[{self.column}]" if self.column else ""
        shown = "not computed" if self.value is None else f"{self.value:.4g}"
        return f"{self.metric}{where} = {shown} (needs {bound})"


def check_gate_names(
    gates: list[Gate], task: Task, metrics: list[str], fairness_columns: list[str]
) -> None:
    """Refuse unknown metric names and misplaced columns in ``gates`` and ``evaluate.metrics``."""
    problems: list[tuple[str, int | None, str]] = []
    for index, gate in enumerate(gates):
        problem = _gate_problem(gate, task, fairness_columns)
        if problem:
            problems.append((f"gates[{index}].{problem[0]}", None, problem[1]))
    for index, name in enumerate(metrics):
        if name not in TASK_METRICS[task]:
            problems.append((f"evaluate.metrics[{index}]", None, _unknown(name, task)))
    if problems:
        raise SpecError("invalid metric names", problems=problems)


def _gate_problem(gate: Gate, task: Task, fairness_columns: list[str]) -> tuple[str, str] | None:
    fair = gate.metric in FAIRNESS_METRICS[task]
    if gate.metric not in TASK_METRICS[task] and not fair:
        return "metric", _unknown(gate.metric, task)
    if fair and gate.column is None:
        return "column", "a fairness gate needs 'column'"
    if not fair and gate.column is not None:
        return "column", f"{gate.metric} is not a fairness metric: it takes no column"
    if fair and gate.column not in fairness_columns:
        return "column", (
            f"{gate.column!r} is not checked for fairness "
            "(mark it sensitive: true, or list it under evaluate.fairness)"
        )
    return None


def _unknown(name: str, task: Task) -> str:
    known = sorted(TASK_METRICS[task] | FAIRNESS_METRICS[task])
    return f"unknown metric {name!r} for a {task.value} task (known: {', '.join(known)})"


def check_gates(
    gates: list[Gate], metrics: dict[str, float], fairness: dict[str, Any]
) -> list[GateResult]:
    """Judge every gate; a metric that could not be computed fails its gate."""
    return [_judge(gate, _value(gate, metrics, fairness)) for gate in gates]


def _value(gate: Gate, metrics: dict[str, float], fairness: dict[str, Any]) -> float | None:
    if gate.column is None:
        return metrics.get(gate.metric)
    return fairness_metric(fairness, gate.column, gate.metric)


def _judge(gate: Gate, value: float | None) -> GateResult:
    passed = value is not None
    if value is not None and gate.min is not None:
        passed = value >= gate.min
    if value is not None and gate.max is not None:
        passed = passed and value <= gate.max
    return GateResult(gate.metric, gate.column, gate.min, gate.max, value, passed)
