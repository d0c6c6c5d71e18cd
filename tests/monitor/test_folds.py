"""Windows whose chunks differ, labels as feedback sends them, and the rules that keep checks quiet.

Each test folds a window in several chunks, as the log is read, since a
window's statistics must not depend on where its chunks are cut.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from atoll.model.fairness import MISSING_GROUP, fairness_report
from atoll.monitor.checks import WindowChecks
from atoll.monitor.reference import Reference
from atoll.schema import Column, Schema
from atoll.spec_monitor import FairnessSpec, PerformanceSpec, Threshold
from atoll.spec_serve import MonitorSpec
from atoll.store.logwindow import LoggedRow
from atoll.types import ColumnType, Role
from tests.monitor.conftest import CATEGORICAL, NUMERIC, synthetic_frame, synthetic_reference

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _rows(
    inputs: list[dict[str, Any]],
    predicted: list[Any],
    labels: list[Any] | None = None,
    scores: list[float] | None = None,
) -> list[LoggedRow]:
    """Log rows of a binary model (classes 0 and 1), labelled where ``labels`` is not None."""
    labels = labels if labels is not None else [None] * len(inputs)
    scores = scores if scores is not None else [0.3 + 0.4 * int(p) for p in predicted]
    return [
        LoggedRow(
            prediction_id=f"p{i}",
            created_at=NOW,
            version=1,
            inputs=row,
            outputs={"prediction": p, "probabilities": {"0": 1 - s, "1": s}},
            latency_ms=2.0,
            labelled=label is not None,
            label=label,
            label_received_at=NOW + timedelta(hours=2) if label is not None else None,
        )
        for i, (row, p, label, s) in enumerate(zip(inputs, predicted, labels, scores, strict=True))
    ]


def _report(checks: WindowChecks, spec: MonitorSpec | None = None) -> dict[str, Any]:
    return checks.report(spec or MonitorSpec(), source="log", window=(None, None)).to_dict()


def _with_schema(reference: Reference, roles: dict[str, Role]) -> Reference:
    """``reference`` with a schema: every column a feature unless ``roles`` says otherwise."""
    columns = {n: Column(type=ColumnType.FLOAT, role=roles.get(n, Role.FEATURE)) for n in NUMERIC}
    columns |= {
        n: Column(type=ColumnType.CATEGORY, role=roles.get(n, Role.FEATURE)) for n in CATEGORICAL
    }
    columns["y"] = Column(type=ColumnType.INT, role=Role.TARGET)
    return dataclasses.replace(reference, schema=Schema(columns, target="y"))


def test_a_column_one_chunk_lacks_is_null_there_not_absent() -> None:
    reference = synthetic_reference(synthetic_frame(5_000, seed=1))
    checks = WindowChecks(reference)
    current = synthetic_frame(3_000, seed=2)
    checks.add_frame(current.iloc[:1_000])
    checks.add_frame(current.iloc[1_000:2_000].drop(columns=["x0", "c0"]))  # these rows lack both
    checks.add_frame(current.iloc[2_000:])
    report = checks.report(MonitorSpec(), source="f.csv", window=(None, None)).to_dict()

    quality, drift = report["checks"]["quality"], report["checks"]["drift"]
    assert quality["absent"] == []
    assert quality["columns"]["x0"]["rows"] == 3_000 and quality["columns"]["x0"]["nulls"] == 1_000
    assert quality["columns"]["c0"]["null_rate"] == pytest.approx(1 / 3)
    assert quality["columns"]["x0"]["status"] == "alert"  # a third of the rows lost it
    assert drift["columns"]["x0"]["rows"] == 2_000 and drift["columns"]["x0"]["status"] == "ok"
    assert drift["columns"]["c0"]["rows"] == 2_000 and "psi" in drift["columns"]["c0"]


def test_absence_is_judged_over_the_window_and_only_for_features() -> None:
    base = synthetic_reference(synthetic_frame(5_000, seed=1))
    reference = _with_schema(base, {"x14": Role.TIME, "c4": Role.ID})
    records = synthetic_frame(400, seed=3).drop(columns=["x13", "x14", "c4"]).to_dict("records")
    checks = WindowChecks(reference)
    for start in range(0, 400, 100):
        chunk = records[start : start + 100]
        checks.add_logged(_rows(chunk, [0] * len(chunk)))
    quality = _report(checks)["checks"]["quality"]

    assert quality["absent"] == ["c4", "x13", "x14"]
    assert quality["absent_features"] == ["x13"]
    assert quality["status"] == "alert"

    checks = WindowChecks(reference)  # only the id and time columns missing: nothing to fix
    kept = [{k: v for k, v in r.items() if k not in ("x14", "c4")} for r in records]
    kept = [r | {"x13": 10.0} for r in kept]
    checks.add_logged(_rows(kept, [0] * len(kept)))
    quality = _report(checks)["checks"]["quality"]
    assert quality["absent"] == ["c4", "x14"] and quality["absent_features"] == []
    assert quality["columns"]["x0"]["status"] == "ok"
    assert "c4" not in quality["columns"] and "x14" not in quality["columns"]


def test_a_sensitive_column_some_chunks_lack_is_a_missing_group() -> None:
    rng = np.random.default_rng(7)
    frame = synthetic_frame(1_000, seed=1)
    frame["sex"] = rng.choice(["female", "male"], 1_000)
    reference = synthetic_reference(frame, sensitive=("sex",))
    checks = WindowChecks(reference)
    with_sex = [{"sex": s} for s in ["female", "male"] * 150]
    checks.add_logged(_rows(with_sex, [1, 0] * 150, labels=[1, 0, 0, 1] * 75))
    checks.add_logged(_rows([{}] * 200, [0] * 200, labels=[1, 0] * 100))  # the column is gone
    checks.add_logged(_rows(with_sex[:100], [0, 1] * 50, labels=[0, 1] * 50))
    sex = _report(checks, MonitorSpec(fairness=FairnessSpec(min_group_rows=10)))["checks"][
        "fairness"
    ]["columns"]["sex"]

    assert {g: r["count"] for g, r in sex["groups"].items()} == {
        "female": 200,
        "male": 200,
        MISSING_GROUP: 200,
    }
    labelled = sex["labelled_groups"]
    assert sum(r["labelled"] for r in labelled.values()) == 600
    assert labelled[MISSING_GROUP] == {
        "labelled": 200,
        "positives": 100,
        "negatives": 100,
        "tpr": 0.0,
        "fpr": 0.0,
        "judged": True,
    }


def _disparity(per_group: int, seed: int) -> tuple[list[dict[str, Any]], list[int], list[int]]:
    """``per_group`` labelled rows per group, half positive; TPR 0.5 in group a, 0.8 in b."""
    rng = np.random.default_rng(seed)
    inputs, predicted, labels = [], [], []
    for group, tpr in (("a", 0.5), ("b", 0.8)):
        truth = np.arange(per_group) % 2
        hit = rng.uniform(size=per_group) < np.where(truth == 1, tpr, 0.1)
        inputs += [{"g": group}] * per_group
        predicted += hit.astype(int).tolist()
        labels += truth.tolist()
    return inputs, predicted, labels


@pytest.mark.parametrize(("per_group", "flagged"), [(100, False), (400, True)])
def test_tpr_and_fpr_gaps_are_judged_only_on_groups_with_enough_positives_and_negatives(
    per_group: int, flagged: bool
) -> None:
    """50 positives per group is too few to judge (default: 100); 200 is enough."""
    frame = synthetic_frame(500, seed=1)
    frame["g"] = np.where(np.arange(500) % 2, "a", "b")
    reference = synthetic_reference(frame, sensitive=("g",))
    inputs, predicted, labels = _disparity(per_group, seed=11)
    checks = WindowChecks(reference)
    for start in range(0, len(inputs), 150):
        end = start + 150
        checks.add_logged(_rows(inputs[start:end], predicted[start:end], labels[start:end]))
    spec = MonitorSpec(fairness=FairnessSpec(demographic_parity_difference=0.9))
    g = _report(checks, spec)["checks"]["fairness"]["columns"]["g"]

    expected = fairness_report(
        "binary", np.array(labels), np.array(predicted), {"g": np.array([r["g"] for r in inputs])}
    )["columns"]["g"]
    assert g["equalized_odds_difference"] == pytest.approx(expected["equalized_odds_difference"])
    for name, rates in g["labelled_groups"].items():
        assert rates["tpr"] == pytest.approx(expected["groups"][name]["tpr"])
        assert rates["fpr"] == pytest.approx(expected["groups"][name]["fpr"])
    assert g["equalized_odds_difference"] > 0.2  # reported either way
    assert ("equalized_odds_difference" in g["flagged"]) is flagged
    assert g["status"] == ("alert" if flagged else "ok")
    assert g["equalized_odds_judged_groups"] == (["a", "b"] if flagged else [])


def _binary_window(
    rows: int, seed: int, *, noise: float
) -> tuple[list[Any], list[int], list[float]]:
    """Labels sent as feedback does (1.0, "0", 1), predictions and scores of a given quality."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, rows)
    scores = np.clip(truth * 0.5 + 0.25 + rng.normal(0, noise, rows), 0.0, 1.0)
    labels = [(float(t), str(t), int(t))[i % 3] for i, t in enumerate(truth)]
    return labels, truth.tolist(), scores.tolist()


def test_feedback_labels_are_read_as_training_reads_them_and_the_metric_is_judged() -> None:
    reference = synthetic_reference(synthetic_frame(1_000, seed=1))  # baseline roc_auc 0.8
    labels, truth, scores = _binary_window(3_000, seed=4, noise=0.2)
    predicted = [int(s > 0.5) for s in scores]
    checks = WindowChecks(reference)
    for start in range(0, 3_000, 1_000):
        part = slice(start, start + 1_000)
        rows = _rows([{}] * 1_000, [float(p) for p in predicted[part]], labels[part], scores[part])
        checks.add_logged(rows)
    performance = _report(checks)["checks"]["performance"]

    assert performance["unknown_labels"] == 0 and performance["labelled_rows"] == 3_000
    assert performance["metrics"]["roc_auc"] == pytest.approx(
        roc_auc_score(truth, scores), abs=1e-12
    )
    assert performance["metrics"]["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert performance["metric_drop"] < 0 and performance["status"] == "ok"  # better than 0.8
    assert checks.labels.truth.values.dtype == np.int8
    assert checks.labels.scores is not None and checks.labels.scores.values.ndim == 1


@pytest.mark.parametrize(
    ("noise", "rows", "status"),
    [(0.5, 3_000, "alert"), (0.35, 3_000, "warn"), (0.5, 50, "no_data")],
)
def test_a_metric_falling_below_its_training_value_warns_then_alerts(
    noise: float, rows: int, status: str
) -> None:
    reference = synthetic_reference(synthetic_frame(1_000, seed=1))
    reference = dataclasses.replace(reference, baseline={"roc_auc": 0.9})
    labels, truth, scores = _binary_window(rows, seed=5, noise=noise)
    checks = WindowChecks(reference)
    checks.add_logged(_rows([{}] * rows, [int(s > 0.5) for s in scores], labels, scores))
    spec = MonitorSpec(performance=PerformanceSpec(max_metric_drop=Threshold(warn=0.03, alert=0.1)))
    performance = _report(checks, spec)["checks"]["performance"]

    drop = (0.9 - roc_auc_score(truth, scores)) / 0.9
    assert performance["metric_drop"] == pytest.approx(drop)
    assert performance["status"] == status
    if status == "no_data":
        assert "min_labelled_rows" in performance["reason"] and performance["metrics"]
