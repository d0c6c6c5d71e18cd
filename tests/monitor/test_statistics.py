"""Drift, quality and fairness statistics on folded windows, without a database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from atoll.errors import PackageError, SpecError
from atoll.monitor.checks import WindowChecks
from atoll.monitor.reference import load_reference
from atoll.spec import load_project_options
from atoll.spec_serve import MonitorSpec
from atoll.store.logwindow import LoggedRow
from tests.conftest import MakePackage
from tests.monitor.conftest import synthetic_frame, synthetic_reference

DRIFTED = {"x3", "x11", "c2"}


def _drifted_window(rows: int) -> object:
    current = synthetic_frame(rows, seed=2)
    current["x3"] = current["x3"] + 1.5  # a shift of 0.75 standard deviations
    current["x11"] = current["x11"] * 1.8  # a change of spread
    rng = np.random.default_rng(3)
    current["c2"] = rng.choice(["a", "b", "c", "d"], rows, p=[0.1, 0.2, 0.3, 0.4])
    return current


def test_drift_is_found_on_exactly_the_injected_columns() -> None:
    reference = synthetic_reference(synthetic_frame(20_000, seed=1))
    checks = WindowChecks(reference)
    current = _drifted_window(6_000)
    for start in range(0, len(current), 1_000):  # folded chunk by chunk, as a window is read
        checks.add_frame(current.iloc[start : start + 1_000])
    drift = checks.report(MonitorSpec(), source="file.csv", window=(None, None)).checks["drift"]

    assert set(drift["drifted"]) == DRIFTED
    assert drift["warned"] == []
    assert drift["status"] == "alert"
    assert drift["columns"]["x3"]["psi"] > 0.25
    assert drift["columns"]["c2"]["js"] > 0.2
    quiet = [c for n, c in drift["columns"].items() if n not in DRIFTED]
    assert all(c["status"] == "ok" and c["rows"] == 6_000 for c in quiet)
    assert all(c["ks_p_value"] is not None for n, c in drift["columns"].items() if n[0] == "x")


def test_an_empty_window_is_no_data_and_valid_json() -> None:
    checks = WindowChecks(synthetic_reference(synthetic_frame(2_000, seed=1), sensitive=("c0",)))
    until = datetime(2026, 1, 2, tzinfo=UTC)
    report = checks.report(MonitorSpec(), source="log", window=(until - timedelta(days=1), until))

    assert report.rows == 0
    assert report.status == "no_data"
    assert {c["status"] for c in report.checks.values()} == {"no_data"}
    text = json.dumps(report.to_dict(), allow_nan=False)  # never NaN
    assert json.loads(text)["window_end"] == until.isoformat()


def test_quality_counts_nulls_out_of_range_and_unseen_categories() -> None:
    reference = synthetic_reference(synthetic_frame(5_000, seed=1))
    current = synthetic_frame(1_000, seed=4)
    current.loc[:299, "x0"] = np.nan
    current.loc[:19, "x1"] = 1e6
    current.loc[:49, "c0"] = "zz"
    current = current.drop(columns=["x14"])
    checks = WindowChecks(reference)
    checks.add_frame(current)
    quality = checks.report(MonitorSpec(), source="f", window=(None, None)).checks["quality"]

    columns = quality["columns"]
    assert columns["x0"]["nulls"] == 300 and columns["x0"]["status"] == "alert"
    assert columns["x1"]["above_range"] == 20 and columns["x1"]["status"] == "warn"
    assert columns["c0"]["unseen_values"] == 50
    assert columns["c0"]["unseen_categories"] == {"zz": 50}
    assert columns["c0"]["unseen_unnamed"] == 0
    assert quality["absent"] == ["x14"]
    assert columns["x2"]["status"] == "ok"


def _logged(groups: list[str], predicted: list[int], labels: list[int | None]) -> list[LoggedRow]:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    return [
        LoggedRow(
            prediction_id=f"p{i}",
            created_at=now,
            version=1,
            inputs={"sex": group},
            outputs={
                "prediction": p,
                "probabilities": {"0": 0.3 + 0.4 * (1 - p), "1": 0.3 + 0.4 * p},
            },
            latency_ms=2.0,
            labelled=label is not None,
            label=label,
            label_received_at=now + timedelta(hours=1) if label is not None else None,
        )
        for i, (group, p, label) in enumerate(zip(groups, predicted, labels, strict=True))
    ]


@pytest.mark.parametrize(("female_rate", "flagged"), [(0.6, True), (0.3, False)])
def test_an_injected_group_disparity_is_flagged(female_rate: float, flagged: bool) -> None:
    rng = np.random.default_rng(5)
    frame = synthetic_frame(1_000, seed=1)
    frame["sex"] = rng.choice(["female", "male"], 1_000)
    reference = synthetic_reference(frame, sensitive=("sex",))
    groups = ["female"] * 500 + ["male"] * 500
    predicted = [int(v) for v in rng.uniform(size=1_000) < ([female_rate] * 500 + [0.3] * 500)]
    checks = WindowChecks(reference)
    checks.add_logged(_logged(groups, predicted, [None] * 1_000))
    fairness = checks.report(MonitorSpec(), source="log", window=(None, None)).checks["fairness"]

    sex = fairness["columns"]["sex"]
    rates = {g: r["selection_rate"] for g, r in sex["groups"].items()}
    assert rates["female"] == pytest.approx(np.mean(predicted[:500]))
    assert ("demographic_parity_difference" in sex["flagged"]) is flagged
    assert fairness["status"] == ("alert" if flagged else "ok")


def test_a_missing_sensitive_column_is_named() -> None:
    reference = synthetic_reference(synthetic_frame(1_000, seed=1), sensitive=("email",))
    checks = WindowChecks(reference)
    checks.add_logged(_logged(["x"] * 10, [1] * 10, [None] * 10))
    fairness = checks.report(MonitorSpec(), source="log", window=(None, None)).checks["fairness"]

    assert "not in the logged inputs" in fairness["columns"]["email"]["reason"]


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"drift": {"psi": {"warn": 0.3, "alert": 0.2}}}, "monitor.drift.psi"),
        ({"drift": {"js": {"warn": 0.5, "alert": 1.5}}}, "monitor.drift.js"),
        ({"drift": {"ks": {"warn": -0.1, "alert": 0.2}}}, "monitor.drift.ks.warn"),
        ({"quality": {"null_rate_increase": {"warn": 0.2, "alert": 0.2}}}, "monitor.quality"),
        ({"fairness": {"demographic_parity_difference": 0}}, "monitor.fairness"),
        (
            {"performance": {"max_metric_drop": {"warn": 0.1, "alert": 0.05}}},
            "monitor.performance.max_metric_drop",
        ),
        ({"performance": {"min_labelled_rows": 0}}, "monitor.performance.min_labelled_rows"),
        (
            {"quality": {"rejected_rate": {"warn": 0.5, "alert": 2}}},
            "monitor.quality.rejected_rate",
        ),
    ],
)
def test_thresholds_that_make_no_sense_are_spec_errors(
    tmp_path: Path, section: dict[str, object], field: str
) -> None:
    import yaml

    spec = tmp_path / "atoll.yaml"
    spec.write_text(yaml.safe_dump({"monitor": section}))
    with pytest.raises(SpecError) as caught:
        load_project_options(spec)
    fields = [problem[0] for problem in caught.value.problems]
    assert any(f.startswith(field) for f in fields), fields


def test_default_thresholds_load() -> None:
    spec = MonitorSpec()
    assert (spec.drift.psi.warn, spec.drift.psi.alert) == (0.1, 0.25)
    assert (spec.performance.max_metric_drop.warn, spec.performance.max_metric_drop.alert) == (
        0.05,
        0.1,
    )
    assert spec.fairness.min_group_rows == 100


def test_a_model_without_a_profile_is_a_clear_error(make_package: MakePackage) -> None:
    directory = make_package(name="credit-risk")
    manifest = json.loads((directory / "MANIFEST.json").read_text())
    with pytest.raises(PackageError, match="model credit-risk@4 has no reference profile"):
        load_reference(directory, manifest, 4)
