"""The pieces of compression that need no trained model: the table, the rule, the hold-out."""

from __future__ import annotations

import io
from importlib import resources
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from atoll.data.synthetic import credit_risk
from atoll.errors import DataError, SchemaError, SpecError, first_line
from atoll.model import holdout
from atoll.model.compress import candidates, cost, report
from atoll.model.compress._onnx import NotBuilt
from atoll.model.compress.cost import max_difference, metric_drop
from atoll.model.compress.report import CompressReport, Row
from atoll.spec import Spec, parse_spec
from atoll.spec_compress import CANDIDATES, CompressSpec
from atoll.store import _staging
from atoll.types import Task

DEMO = resources.files("atoll.data").joinpath("demo_spec.yaml").read_text()


def _spec(extra: str = "") -> Spec:
    return parse_spec(DEMO + extra)


# --- the rule ---------------------------------------------------------------------------


def _row(name: str, size: int, drop: float = 0.0, diff: float = 0.0) -> Row:
    return Row(name, report.QUALIFIES, size_bytes=size, drop=drop, max_diff=diff)


def test_judging_checks_the_budget_then_the_tolerance() -> None:
    assert report.judge(_row("a", 1, drop=0.001), 0.001, 1e-3).status == "qualifies"
    over = report.judge(_row("b", 1, drop=0.0011), 0.001, 1e-3)
    assert (over.status, over.reason) == ("over budget", "drop 0.0011 > 0.001")
    far = report.judge(_row("c", 1, drop=-0.2, diff=0.5), 0.001, 1e-3)
    assert (far.status, far.reason) == ("over tolerance", "max diff 0.5 > 0.001")
    assert report.judge(Row("d", report.QUALIFIES), 0.001, 1e-3).status == "failed"


def test_a_nan_drop_or_difference_never_qualifies() -> None:
    nan = float("nan")

    no_metric = report.judge(_row("a", 1, drop=nan), 0.001, 1e-3)
    no_diff = report.judge(_row("b", 1, diff=nan), 0.001, 1e-3)

    assert (no_metric.status, no_metric.reason) == ("over budget", "drop is NaN, not <= 0.001")
    assert (no_diff.status, no_diff.reason) == ("over tolerance", "max diff is NaN, not <= 0.001")
    rows = [Row("native", report.BASELINE, size_bytes=100), no_metric, no_diff]
    assert report.select(rows) == (rows, None)


def test_the_smallest_qualifying_candidate_is_selected() -> None:
    rows = [
        Row("native", report.BASELINE, size_bytes=100, drop=0.0, max_diff=0.0),
        _row("big", 90),
        _row("small", 50),
        Row("tiny", report.OVER_TOLERANCE, size_bytes=10),
        Row("broken", report.NOT_BUILT, "no converter"),
    ]

    marked, winner = report.select(rows)

    assert winner == "small"
    assert [(r.status, r.reason) for r in marked] == [
        ("baseline", ""),
        ("qualifies", "larger than small"),
        ("selected", ""),
        ("over tolerance", ""),
        ("not built", "no converter"),
    ]


def test_nothing_is_selected_unless_it_is_smaller_than_the_native_package() -> None:
    rows = [Row("native", report.BASELINE, size_bytes=100), _row("onnx", 100)]

    assert report.select(rows) == (rows, None)
    assert report.select(rows[:1]) == (rows[:1], None)


def test_the_text_table_lists_every_row_and_the_reasons_below() -> None:
    rows = [
        Row("native", report.BASELINE, size_bytes=96_100, metric=0.8, drop=0.0, max_diff=0.0),
        Row("onnx-fp16", report.NOT_BUILT, "not applicable to tree ensembles"),
    ]
    done = CompressReport("roc_auc", "serve", 0.001, 1e-3, {"rows": 10}, rows)

    lines = done.text().splitlines()

    assert lines[0].split() == [
        "representation",
        "size",
        "model",
        "metric",
        "drop",
        "max",
        "diff",
        "load",
        "ms",
        "1-row",
        "us",
        "10k-row",
        "ms",
        "status",
    ]
    assert lines[1].split()[:5] == ["native", "96.1", "KB", "-", "0.8000"]
    assert lines[2].split()[0] == "onnx-fp16" and lines[2].endswith("not built")
    assert lines[3] == "onnx-fp16: not applicable to tree ensembles"
    assert done.to_dict()["rows"][1]["reason"] == "not applicable to tree ensembles"


def test_the_archive_size_uses_the_level_the_store_compresses_with() -> None:
    assert cost.ARCHIVE_LEVEL == _staging.ZSTD_LEVEL


def test_a_drop_is_a_loss_whichever_way_the_metric_points() -> None:
    assert metric_drop("roc_auc", 0.80, 0.79) == pytest.approx(0.01)
    assert metric_drop("log_loss", 0.40, 0.41) == pytest.approx(0.01)
    assert metric_drop("rmse", 2.0, 1.5) == pytest.approx(-0.5)


def test_differences_are_absolute_for_probabilities_and_relative_for_large_values() -> None:
    base = np.array([[0.2, 0.8], [0.5, 0.5]])
    moved = base + np.array([[0.0, 0.01], [0.0, 0.0]])
    assert max_difference(True, base, moved) == pytest.approx(0.01)
    values = np.array([0.5, 1000.0])
    assert max_difference(False, values, values + np.array([0.01, 1.0])) == pytest.approx(0.01)


# --- the spec section ---------------------------------------------------------------------


def test_the_compress_section_has_defaults_and_is_checked() -> None:
    assert _spec().compress == CompressSpec()
    assert CompressSpec().candidates == list(CANDIDATES)
    spec = _spec("compress: {max_metric_drop: 0.01, target: archive, candidates: [onnx]}\n")
    assert (spec.compress.max_metric_drop, spec.compress.target) == (0.01, "archive")

    with pytest.raises(SpecError) as caught:
        _spec("compress: {candidates: [onnx, gzip], tolerance: 0}\n")

    fields = {field for field, _line, _message in caught.value.problems}
    assert fields == {"compress.candidates", "compress.tolerance"}


# --- the hold-out -------------------------------------------------------------------------


def _read(data: bytes) -> pd.DataFrame:
    frame: pd.DataFrame = pq.read_table(io.BytesIO(data)).to_pandas()
    return frame


def test_the_holdout_keeps_features_and_target_at_most_max_rows_the_same_each_time() -> None:
    spec = _spec()
    frame = credit_risk(holdout.MAX_ROWS + 500, seed=3)
    test = np.arange(100, len(frame))

    first, again = (
        holdout.holdout_bytes(spec, frame, test),
        holdout.holdout_bytes(spec, frame, test),
    )

    assert first is not None and first == again
    rows = _read(first[0])
    assert first[1] == len(rows) == holdout.MAX_ROWS
    assert list(rows.columns) == [*spec.schema.features, "defaulted"]
    assert "email" not in rows.columns  # pii, and not a feature
    assert pq.read_metadata(io.BytesIO(first[0])).row_group(0).column(0).compression == "ZSTD"


def test_no_holdout_is_kept_when_a_feature_holds_personal_data() -> None:
    spec = _spec()
    columns = dict(spec.columns)
    columns["income"] = columns["income"].model_copy(update={"pii": True})
    spec = Spec.model_validate({**spec.model_dump(), "columns": columns})
    frame = credit_risk(600, seed=3)

    assert holdout.holdout_bytes(spec, frame, np.arange(600)) is None


def test_labelled_rows_encode_the_target_as_training_did() -> None:
    spec = _spec()
    frame = credit_risk(300, seed=4)[[*spec.schema.features, "defaulted"]]
    frame.loc[5, "age"] = 12  # below the schema's minimum: left out, and counted

    rows = holdout.labelled(frame, spec.schema, Task.BINARY, [0, 1])

    assert (rows.rows, rows.dropped) == (299, 1)
    assert rows.y.dtype == np.int64
    assert rows.y.tolist() == frame["defaulted"].drop(index=5).tolist()
    reversed_classes = holdout.labelled(frame, spec.schema, Task.BINARY, [1, 0])
    assert (reversed_classes.y == 1 - rows.y).all()


def test_labelled_rows_need_the_target_and_known_labels() -> None:
    spec = _spec()
    frame = credit_risk(50, seed=5)[[*spec.schema.features, "defaulted"]]

    with pytest.raises(DataError, match="need the target column 'defaulted'"):
        holdout.labelled(frame.drop(columns=["defaulted"]), spec.schema, Task.BINARY, [0, 1])
    with pytest.raises(DataError, match="not one of the model's classes"):
        holdout.labelled(frame, spec.schema, Task.BINARY, [0, 7])
    with pytest.raises(SchemaError):
        holdout.labelled(frame.drop(columns=["age"]), spec.schema, Task.BINARY, [0, 1])


# --- the candidates -----------------------------------------------------------------------


def _lightgbm_source(
    directory: Path, model_text: str, task: Task, n_features: int
) -> candidates.Source:
    (directory / "model.lgb.txt").write_text(model_text)
    manifest = {"task": task.value, "model": {"format": "lightgbm", "file": "model.lgb.txt"}}
    return candidates.Source(directory, manifest, n_features)


def test_a_model_lightgbm_cannot_read_is_a_reason_in_the_table(tmp_path: Path) -> None:
    source = _lightgbm_source(tmp_path, "not a LightGBM model\n", Task.BINARY, 3)

    built = dict(candidates.build(source, ["onnx", "trees"]))

    assert set(built) == {"onnx", "trees"}
    assert all(isinstance(outcome, NotBuilt) for outcome in built.values())
    assert str(built["trees"]) == (
        "reading the LightGBM model failed: Model file doesn't specify the number of classes"
    )
    assert str(built["onnx"]).startswith("conversion failed: ")


def test_pruning_keeps_iterations_and_counts_a_tree_per_class_in_each(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y = np.digitize(x[:, 0], [-0.5, 0.5])
    model = lgb.LGBMClassifier(n_estimators=8, num_leaves=4, verbosity=-1).fit(x, y)
    source = _lightgbm_source(tmp_path, model.booster_.model_to_string(), Task.MULTICLASS, 4)

    built = dict(candidates.build(source, ["trees"]))

    assert list(built) == ["trees-6", "trees-6-onnx", "trees-4", "trees-4-onnx"]
    for name, k in (("trees-6", 6), ("trees-4", 4)):
        native, onnx = built[name], built[f"{name}-onnx"]
        assert isinstance(native, candidates.Built) and isinstance(onnx, candidates.Built)
        assert native.details == onnx.details == {"iterations": k, "of": 8, "trees": 3 * k}
        assert lgb.Booster(model_str=native.data.decode()).num_trees() == 3 * k


# --- error messages -----------------------------------------------------------------------


def test_first_line_is_the_message_s_first_line_or_the_type() -> None:
    assert first_line(ValueError("  bad value\n  detail\n")) == "bad value"
    assert first_line(ValueError("x" * 500)) == "x" * 300
    assert first_line(KeyError()) == "KeyError"
