"""Training end to end through ``atoll.api.train``: packages, lineage, gates and refusals."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from atoll import api
from atoll.errors import (
    AtollError,
    DataError,
    PromotionError,
    SchemaError,
    SpecError,
    TrainingError,
)
from atoll.model.predictor import schema_to_manifest
from atoll.settings import STATE_DIR, Settings
from atoll.spec import ModelSpec, load_spec
from tests.conftest import write_demo_project

ROWS = 1500
NAME = "credit-risk"
CSV = Path("data") / "applications.csv"
DEMO_SPEC = Path(api.__file__).parent / "data" / "demo_spec.yaml"
PASSING_GATES = [
    {"metric": "roc_auc", "min": 0.55},
    {"metric": "demographic_parity_difference", "column": "sex", "max": 0.5},
]
Edit = Callable[[pd.DataFrame], pd.DataFrame]


def _project(root: Path, edit: Edit | None = None, **changes: Any) -> tuple[Path, Settings]:
    """A demo project of ``ROWS`` rows; ``edit`` rewrites its training CSV."""
    spec_path = write_demo_project(root, rows=ROWS, **changes)
    if edit is not None:
        csv = root / CSV
        edit(pd.read_csv(csv)).to_csv(csv, index=False)
    return spec_path, Settings.from_env(project_dir=root, environ={})


def _data_section(**changes: Any) -> dict[str, Any]:
    return {"path": str(CSV), "time_column": "application_date", **changes}


def _package_dir(settings: Settings, ref: str) -> Path:
    with api.open_registry(settings) as registry:
        return registry.fetch_package(ref)


def _read(directory: Path, name: str) -> Any:
    return json.loads((directory / name).read_text(encoding="utf-8"))


def _assert_nothing_registered(settings: Settings) -> None:
    assert api.list_models(settings=settings) == []
    scratch = settings.project_dir / STATE_DIR / "tmp"
    assert not scratch.exists() or list(scratch.iterdir()) == []


# --- a successful run -----------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Settings, api.TrainOutcome]:
    spec_path, settings = _project(tmp_path_factory.mktemp("ok"), gates=PASSING_GATES)
    return spec_path, settings, api.train(spec_path, settings=settings)


def test_a_successful_run_registers_version_1_ready(trained: Any) -> None:
    _spec_path, settings, outcome = trained
    assert (outcome.version.name, outcome.version.version) == (NAME, 1)
    assert outcome.version.status == "ready"
    assert outcome.result.passed_gates
    (model,) = api.list_models(settings=settings)
    assert (model.name, model.latest_version, model.version_count) == (NAME, 1, 1)
    assert outcome.version.summary["metrics"] == outcome.result.manifest["metrics"]
    assert outcome.version.summary["estimator"] == "lightgbm.LGBMClassifier"


def test_the_manifest_describes_inputs_outputs_metrics_and_gates(trained: Any) -> None:
    spec_path, _settings, outcome = trained
    manifest = outcome.result.manifest
    spec = load_spec(spec_path)

    assert manifest["name"] == NAME
    assert manifest["task"] == "binary"
    assert manifest["input_schema"] == schema_to_manifest(spec.schema)
    assert manifest["input_schema"]["target"] == "defaulted"
    assert manifest["classes"] == [0, 1]
    assert manifest["output_schema"] == {
        "prediction": {"enum": [0, 1]},
        "probabilities": {"classes": [0, 1]},
    }
    assert manifest["model"] == {
        "format": "lightgbm",
        "file": "model.lgb.txt",
        "estimator": "lightgbm.LGBMClassifier",
    }
    assert {"roc_auc", "accuracy", "f1"} <= set(manifest["metrics"])
    assert 0.55 < manifest["metrics"]["roc_auc"] <= 1.0
    gates = manifest["gates"]
    assert gates["passed"] is True
    assert [(g["metric"], g["column"], g["passed"]) for g in gates["results"]] == [
        ("roc_auc", None, True),
        ("demographic_parity_difference", "sex", True),
    ]
    assert gates["results"][0]["value"] == manifest["metrics"]["roc_auc"]


def test_the_lineage_says_what_the_model_was_made_from(trained: Any) -> None:
    spec_path, _settings, outcome = trained
    lineage = outcome.result.manifest["lineage"]

    assert re.fullmatch(r"[0-9a-f]{64}", lineage["data_fingerprint"])
    assert lineage["spec_digest"] == load_spec(spec_path).digest
    assert lineage["data_source"] == str(CSV)
    assert {"python", "numpy", "pandas", "scikit-learn", "lightgbm"} <= set(lineage["libraries"])
    rows = lineage["rows"]
    assert (rows["read"], rows["invalid"], rows["used"]) == (ROWS, 0, ROWS)
    assert rows["train"] + rows["test"] == ROWS
    assert rows["test"] == pytest.approx(0.2 * ROWS, abs=1)
    timings = lineage["timings"]
    assert {"read", "validate", "split", "wrangle", "fit", "evaluate"} <= set(timings)
    assert all(isinstance(t, float) and t >= 0 for t in timings.values())


def test_the_registered_package_holds_every_file(trained: Any) -> None:
    spec_path, settings, outcome = trained
    directory = _package_dir(settings, f"{NAME}@1")
    manifest = _read(directory, "MANIFEST.json")

    expected = {
        "wrangler.json",
        "evaluation.json",
        "profile.json",
        "spec.json",
        "model.lgb.txt",
        "holdout.parquet",
    }
    assert set(manifest["files"]) == expected
    assert {p.name for p in directory.iterdir()} == expected | {"MANIFEST.json"}
    assert manifest["lineage"] == outcome.result.manifest["lineage"]
    assert _read(directory, "spec.json") == load_spec(spec_path).model_dump(mode="json")
    assert (directory / "model.lgb.txt").read_text().startswith("tree")

    evaluation = _read(directory, "evaluation.json")
    assert evaluation["metrics"] == manifest["metrics"]
    assert evaluation["gates"] == manifest["gates"]["results"]
    sex = evaluation["fairness"]["columns"]["sex"]
    assert set(sex["groups"]) == {"female", "male"}
    assert 0.0 <= sex["demographic_parity_difference"] <= 0.5


def test_the_profile_leaves_out_pii_and_id_columns(trained: Any) -> None:
    spec_path, settings, _outcome = trained
    profile = _read(_package_dir(settings, f"{NAME}@1"), "profile.json")
    columns = set(profile["inputs"]["columns"])

    assert "email" not in columns
    assert load_spec(spec_path).columns["email"].pii
    assert load_spec(spec_path).columns["application_id"].role.value == "id"
    assert columns == set(load_spec(spec_path).columns) - {"email", "application_id"}
    assert profile["rows"]["inputs"] + profile["rows"]["predictions"] == ROWS
    assert "email" not in json.dumps(profile)


def test_the_registered_version_predicts_like_the_trained_one(trained: Any) -> None:
    spec_path, settings, outcome = trained
    new = pd.read_csv(spec_path.parent / "data" / "new_applications.csv").head(50)
    loaded = api.load(f"{NAME}@1", settings=settings).predict(new)
    fresh = outcome.result.predictor.predict(new)
    assert loaded.probabilities is not None and fresh.probabilities is not None
    assert loaded.probabilities.shape == (50, 2)
    np.testing.assert_array_equal(loaded.probabilities, fresh.probabilities)
    assert set(loaded.predictions.tolist()) <= {0, 1}


def test_a_passing_version_can_be_promoted(trained: Any) -> None:
    _spec_path, settings, _outcome = trained
    promoted = api.promote(f"{NAME}@1", settings=settings)
    assert promoted.aliases == ["production"]
    assert api.show(f"{NAME}@production", settings=settings).version == 1


# --- gates ----------------------------------------------------------------------------


def test_a_failing_gate_registers_gate_failed_and_blocks_promotion(
    tmp_path: Path, trained: Any
) -> None:
    spec_path, settings = _project(tmp_path, gates=[{"metric": "roc_auc", "min": 0.99}])
    outcome = api.train(spec_path, settings=settings)

    assert outcome.version.version == 1
    assert outcome.version.status == "gate_failed"
    assert not outcome.result.passed_gates
    (result,) = outcome.result.manifest["gates"]["results"]
    assert result["passed"] is False and result["value"] < 0.99
    # same generated rows as the passing project, different spec
    ok_lineage = trained[2].result.manifest["lineage"]
    lineage = outcome.result.manifest["lineage"]
    assert lineage["data_fingerprint"] == ok_lineage["data_fingerprint"]
    assert lineage["spec_digest"] != ok_lineage["spec_digest"]

    with pytest.raises(PromotionError):
        api.promote(f"{NAME}@1", settings=settings)
    assert api.list_models(settings=settings)[0].aliases == {}

    forced = api.promote(f"{NAME}@1", "staging", force=True, settings=settings)
    assert forced.aliases == ["staging"]
    assert api.show(f"{NAME}@staging", settings=settings).status == "gate_failed"


def test_a_second_run_registers_version_2(tmp_path: Path) -> None:
    spec_path, settings = _project(tmp_path, gates=[])
    first = api.train(spec_path, settings=settings)
    second = api.train(spec_path, settings=settings)
    assert (first.version.version, second.version.version) == (1, 2)
    assert [v.version for v in api.list_versions(NAME, settings=settings)] == [1, 2]


# --- refusals: each names what is wrong and registers nothing -------------------------


def _set_age(rows: list[int] | None, value: Any) -> Edit:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame["age"] = frame["age"].astype(object)
        frame.loc[rows if rows is not None else frame.index, "age"] = value
        return frame

    return edit


def _empty_csv(root: Path) -> None:
    csv = root / CSV
    csv.write_text(csv.read_text().splitlines()[0] + "\n")


REFUSALS: dict[str, tuple[type[AtollError], str, dict[str, Any]]] = {
    "one_class_target": (
        DataError,
        r"target column 'defaulted' has one class only",
        {"edit": lambda f: f.assign(defaulted=0)},
    ),
    "missing_column": (
        SchemaError,
        r"income: missing_column",
        {"edit": lambda f: f.drop(columns=["income"])},
    ),
    "unexpected_column": (
        SchemaError,
        r"extra: unexpected_column",
        {"edit": lambda f: f.assign(extra=1.0)},
    ),
    "wrong_type": (
        SchemaError,
        r"age: type: values are not of type int",
        {"edit": _set_age([3, 10, 20], "abc")},
    ),
    "out_of_range_aborts": (
        SchemaError,
        r"age: min: values below min 18 \(3 rows: 3, 10, 20\)",
        {"edit": _set_age([3, 10, 20], 5)},
    ),
    "every_row_dropped": (
        DataError,
        r"no valid rows",
        {"edit": _set_age(None, 5), "data": _data_section(on_invalid="drop")},
    ),
    "three_classes_for_binary": (
        DataError,
        r"binary but target 'defaulted' has 3 classes",
        {"edit": lambda f: f.assign(defaulted=f.index % 3)},
    ),
    "estimator_outside_allow_list": (
        SpecError,
        r"model\.estimator: 'os\.system' is not allowed",
        {"model": {"estimator": "os.system"}},
    ),
    "estimator_fails_to_fit": (
        TrainingError,
        r"sklearn\.linear_model\.LogisticRegression failed to fit",
        {"model": {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"C": -1}}},
    ),
    "unknown_gate_metric": (
        SpecError,
        r"gates\[0\]\.metric",
        {"gates": [{"metric": "rmse", "max": 1.0}]},
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_bad_inputs_are_refused_and_register_nothing(tmp_path: Path, case: str) -> None:
    error, pattern, changes = REFUSALS[case]
    spec_path, settings = _project(tmp_path, **changes)

    with pytest.raises(error, match=pattern) as caught:
        api.train(spec_path, settings=settings)

    assert type(caught.value) is error
    _assert_nothing_registered(settings)


def test_a_schema_error_carries_the_report_and_source(tmp_path: Path) -> None:
    spec_path, settings = _project(tmp_path, edit=_set_age([7], "abc"))
    with pytest.raises(SchemaError) as caught:
        api.train(spec_path, settings=settings)
    assert caught.value.context["source"] == str(CSV)
    assert [(v.column, v.rule) for v in caught.value.report.violations] == [("age", "type")]


def test_a_missing_data_file_is_refused(tmp_path: Path) -> None:
    spec_path, settings = _project(tmp_path)
    (tmp_path / CSV).unlink()
    with pytest.raises(DataError, match=r"applications\.csv") as caught:
        api.train(spec_path, settings=settings)
    assert caught.value.context["file"].endswith("applications.csv")
    _assert_nothing_registered(settings)


def test_an_empty_data_file_is_refused(tmp_path: Path) -> None:
    spec_path, settings = _project(tmp_path)
    _empty_csv(tmp_path)
    with pytest.raises(DataError, match=r"applications\.csv holds no rows"):
        api.train(spec_path, settings=settings)
    _assert_nothing_registered(settings)


def test_a_failed_run_leaves_earlier_versions_alone(trained: Any) -> None:
    spec_path, settings, _outcome = trained
    before = api.list_models(settings=settings)
    spec = load_spec(spec_path)
    bad = spec.model_copy(
        update={
            "model": ModelSpec(
                estimator="sklearn.linear_model.LogisticRegression", params={"C": -1}
            )
        }
    )
    with pytest.raises(TrainingError, match="LogisticRegression failed to fit"):
        api.train(bad, settings=settings)
    assert [(m.name, m.version_count) for m in api.list_models(settings=settings)] == [
        (m.name, m.version_count) for m in before
    ]


def test_on_invalid_drop_drops_and_reports_invalid_rows(tmp_path: Path) -> None:
    spec_path, settings = _project(
        tmp_path,
        edit=_set_age([3, 10, 20], 5),
        data=_data_section(on_invalid="drop"),
        gates=[],
    )
    outcome = api.train(spec_path, settings=settings)

    rows = outcome.result.manifest["lineage"]["rows"]
    assert (rows["read"], rows["invalid"], rows["used"]) == (ROWS, 3, ROWS - 3)
    assert rows["train"] + rows["test"] == ROWS - 3
    assert outcome.version.status == "ready"
    assert outcome.version.summary["rows"] == rows
    validation = outcome.result.manifest["lineage"]["validation"]
    [violation] = validation["violations"]
    assert (violation["column"], violation["rule"], violation["rows"]) == (
        "age",
        "min",
        [3, 10, 20],
    )


# --- other tasks ----------------------------------------------------------------------


def _three_classes(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(defaulted=np.digitize(frame["credit_score"], [620, 700]))


def test_a_multiclass_task_end_to_end(tmp_path: Path) -> None:
    spec_path, settings = _project(
        tmp_path,
        edit=_three_classes,
        task="multiclass",
        evaluate={"metrics": ["accuracy", "macro_f1"]},
        gates=[
            {"metric": "accuracy", "min": 0.6},
            {"metric": "accuracy_difference", "column": "sex", "max": 0.5},
        ],
    )
    outcome = api.train(spec_path, settings=settings)
    manifest = outcome.result.manifest

    assert outcome.version.status == "ready"
    assert manifest["task"] == "multiclass"
    assert manifest["classes"] == [0, 1, 2]
    assert manifest["output_schema"]["prediction"] == {"enum": [0, 1, 2]}
    assert manifest["metrics"]["accuracy"] > 0.6
    assert "macro_f1" in manifest["metrics"]
    evaluation = _read(_package_dir(settings, f"{NAME}@1"), "evaluation.json")
    assert "accuracy_difference" in evaluation["fairness"]["columns"]["sex"]

    new = pd.read_csv(tmp_path / "data" / "new_applications.csv").head(20)
    prediction = api.load(f"{NAME}@1", settings=settings).predict(new)
    assert prediction.probabilities is not None
    assert prediction.probabilities.shape == (20, 3)
    np.testing.assert_allclose(prediction.probabilities.sum(axis=1), 1.0, atol=1e-9)
    assert set(prediction.predictions.tolist()) <= {0, 1, 2}


def test_a_regression_task_end_to_end(tmp_path: Path) -> None:
    spec_path, settings = _project(
        tmp_path,
        task="regression",
        target="loan_amount",
        features=[
            {
                "step": "impute",
                "columns": ["income", "employment_years", "debt_to_income"],
                "strategy": "median",
            },
            {"step": "log1p", "columns": ["income"]},
            {"step": "onehot", "columns": ["home_ownership", "purpose", "term_months"]},
        ],
        model={
            "estimator": "lightgbm.LGBMRegressor",
            "params": {"n_estimators": 25, "num_leaves": 15, "n_jobs": 1},
        },
        evaluate={"metrics": ["rmse", "r2"]},
        gates=[
            {"metric": "r2", "min": 0.1},
            {"metric": "mae_difference", "column": "sex", "max": 1e9},
        ],
    )
    outcome = api.train(spec_path, settings=settings)
    manifest = outcome.result.manifest

    assert outcome.version.status == "ready"
    assert manifest["task"] == "regression"
    assert manifest["classes"] == []
    assert manifest["output_schema"] == {"prediction": {"type": "number"}}
    assert manifest["input_schema"]["target"] == "loan_amount"
    assert manifest["metrics"]["r2"] > 0.1
    assert manifest["metrics"]["rmse"] > 0
    evaluation = _read(_package_dir(settings, f"{NAME}@1"), "evaluation.json")
    assert "mae_difference" in evaluation["fairness"]["columns"]["sex"]

    new = pd.read_csv(tmp_path / "data" / "applications.csv").head(20)
    prediction = api.load(f"{NAME}@1", settings=settings).predict(new.drop(columns="loan_amount"))
    assert prediction.probabilities is None
    assert prediction.predictions.shape == (20,)
    assert np.isfinite(prediction.predictions.astype(float)).all()


def _labelled(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(defaulted=np.where(frame["defaulted"] == 1, "bad", "good"))


def _columns_with_text_target() -> dict[str, Any]:
    spec = yaml.safe_load(DEMO_SPEC.read_text())
    columns: dict[str, Any] = spec["columns"]
    columns["defaulted"] = {"type": "category", "nullable": False}
    return columns


def test_positive_class_sets_which_label_the_binary_metrics_are_about(tmp_path: Path) -> None:
    spec_path, settings = _project(
        tmp_path,
        edit=_labelled,
        columns=_columns_with_text_target(),
        evaluate={"positive_class": "bad", "metrics": ["roc_auc"]},
        gates=[],
    )
    outcome = api.train(spec_path, settings=settings)
    assert outcome.result.manifest["classes"] == ["good", "bad"]
    # defaults are the minority: predicted "bad" far less than half the time
    sex = outcome.result.evaluation["fairness"]["columns"]["sex"]["groups"]
    assert all(group["selection_rate"] < 0.5 for group in sex.values())
    assert outcome.result.evaluation["metrics"]["roc_auc"] > 0.6


def test_an_unknown_positive_class_is_refused(tmp_path: Path) -> None:
    spec_path, settings = _project(
        tmp_path,
        edit=_labelled,
        columns=_columns_with_text_target(),
        evaluate={"positive_class": "defaulted"},
        gates=[],
    )
    with pytest.raises(DataError, match=r"positive_class 'defaulted' is not a value"):
        api.train(spec_path, settings=settings)
    _assert_nothing_registered(settings)
