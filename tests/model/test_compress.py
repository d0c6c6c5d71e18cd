"""Compressing a trained LightGBM package: every candidate measured, the smallest fit one kept."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from atoll.errors import CompressionError, IntegrityError, PackageError, SpecError
from atoll.model.compress import CompressReport, _package, compress_package, gating
from atoll.model.holdout import read_holdout
from atoll.model.package import read_manifest, verify_package, write_package
from atoll.model.predictor import Predictor
from atoll.spec_compress import CompressSpec
from tests.conftest import TrainedProject
from tests.model.compressing import Trained

pytestmark = pytest.mark.xdist_group("compress-model")  # one worker compresses once

PARENT = {"name": "credit-risk", "version": 1, "manifest_digest": "0" * 64}


@pytest.fixture(scope="module")
def trained(trained_project: TrainedProject) -> Trained:
    """The session's trained demo version (LightGBM, 25 trees), read only: nothing registers."""
    return Trained(
        trained_project.spec_path.parent, trained_project.settings, trained_project.outcome.version
    )


@pytest.fixture(scope="module")
def compressed(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> CompressReport:
    """One run with the spec's defaults, shared by the read-only tests below."""
    package = trained.package()
    frame = read_holdout(package, read_manifest(package))
    work = tmp_path_factory.mktemp("work")
    return compress_package(package, frame, CompressSpec(), work, parent=PARENT)


def _rows(report: CompressReport) -> dict[str, object]:
    return {row.representation: row for row in report.rows}


def test_every_candidate_is_measured_or_says_why_not(compressed: CompressReport) -> None:
    rows = _rows(compressed)

    assert list(rows)[:4] == ["native", "onnx", "onnx-fp16", "onnx-int8"]
    assert set(rows) == {
        "native",
        "onnx",
        "onnx-fp16",
        "onnx-int8",
        "trees-19",
        "trees-19-onnx",
        "trees-12",
        "trees-12-onnx",
    }
    for name in ("onnx-fp16", "onnx-int8"):
        row = compressed.rows[list(rows).index(name)]
        assert row.status == "not built"
        assert "not applicable to tree ensembles" in row.reason
        assert row.size_bytes is None
    for row in compressed.rows:
        if row.status != "not built":
            assert row.size_bytes and row.model_bytes and row.metric is not None
            assert row.load_ms and row.one_row_us and row.rows_10k_ms


def test_onnx_matches_the_native_model_and_is_selected(compressed: CompressReport) -> None:
    native, onnx = compressed.rows[0], compressed.rows[1]

    assert native.status == "baseline" and native.drop == 0 and native.max_diff == 0
    assert onnx.status == "selected"
    assert onnx.max_diff is not None and onnx.max_diff <= compressed.tolerance
    assert onnx.drop is not None and abs(onnx.drop) <= compressed.max_metric_drop
    assert onnx.size_bytes is not None and native.size_bytes is not None
    assert onnx.size_bytes < native.size_bytes
    assert compressed.selected == "onnx"
    assert compressed.metric == "roc_auc"  # the demo spec's first metric
    assert compressed.holdout == {"source": "holdout.parquet", "rows": 600, "dropped": 0}


def test_fewer_trees_change_predictions_beyond_the_tolerance(compressed: CompressReport) -> None:
    for row in compressed.rows:
        if row.representation.startswith("trees-"):
            assert row.status == "over tolerance", row
            assert row.max_diff is not None and row.max_diff > compressed.tolerance
            assert "max diff" in row.reason


@pytest.fixture(scope="module")
def manifests(trained: Trained, compressed: CompressReport) -> tuple[dict[str, Any], ...]:
    """The selected package's manifest (verified), and its parent's."""
    assert compressed.package_dir is not None
    return verify_package(compressed.package_dir), read_manifest(trained.package())


def test_the_selected_package_names_its_parent_and_what_it_cost(
    compressed: CompressReport, manifests: tuple[dict[str, Any], ...]
) -> None:
    manifest, parent = manifests

    assert manifest["model"] == {**parent["model"], "format": "onnx", "file": "model.onnx"} | {
        "source_format": "lightgbm"
    }
    assert manifest["lineage"]["parent"] == PARENT
    assert manifest["lineage"]["data_fingerprint"] == parent["lineage"]["data_fingerprint"]
    block = manifest["compression"]
    assert block["representation"] == "onnx"
    assert block["metric"] == "roc_auc" and block["target"] == "serve"
    assert block["drop"] == compressed.rows[1].drop
    assert block["evaluated_on"]["rows"] == 600
    kept = set(parent["files"]) - {"model.lgb.txt", "holdout.parquet"}
    assert set(manifest["files"]) == kept | {"model.onnx"}
    for name in ("wrangler.json", "profile.json"):
        assert manifest["files"][name] == parent["files"][name]
    # the hold-out rows are the parent's blob, referred to by hash, not a copy
    assert manifest["references"] == {"holdout.parquet": parent["files"]["holdout.parquet"]}
    assert manifest["holdout"] == parent["holdout"]


def test_the_selected_package_keeps_its_parent_s_metrics_and_meets_the_gates_again(
    compressed: CompressReport, manifests: tuple[dict[str, Any], ...]
) -> None:
    manifest, parent = manifests
    measured = manifest["compression"]["metrics"]

    assert manifest["metrics"] == parent["metrics"]  # the test split's, so versions compare
    assert measured["roc_auc"] == compressed.rows[1].metric == manifest["compression"]["value"]
    gates = manifest["gates"]
    assert gates == compressed.gates and gates["passed"] is True
    judged = {result["metric"]: result for result in gates["results"]}
    assert set(judged) == {"roc_auc", "demographic_parity_difference"}  # the demo spec's gates
    assert judged["roc_auc"]["value"] == measured["roc_auc"]
    fairness = next(result for result in parent["gates"]["results"] if result["column"] == "sex")
    assert judged["demographic_parity_difference"] == fairness
    assert gates["note"] == gating.PARENT_FAIRNESS


def test_a_child_whose_holdout_metrics_fail_a_gate_is_marked_failed(
    trained: Trained, tmp_path: Path
) -> None:
    package = trained.package()
    frame = read_holdout(package, read_manifest(package))
    frame["defaulted"] = 1 - frame["defaulted"]  # every row ranked the wrong way round
    options = CompressSpec(candidates=["onnx"])

    report = compress_package(package, frame, options, tmp_path, parent=PARENT)

    assert report.selected == "onnx" and report.gates is not None
    assert report.gates["passed"] is False
    roc_auc = next(result for result in report.gates["results"] if result["metric"] == "roc_auc")
    assert roc_auc["passed"] is False and roc_auc["value"] < 0.5
    assert read_manifest(report.package_dir or tmp_path)["gates"] == report.gates


def _selected_copy(compressed: CompressReport, tmp_path: Path) -> Path:
    """A copy of the selected package, for tests that change it."""
    assert compressed.package_dir is not None
    return Path(shutil.copytree(compressed.package_dir, tmp_path / "package"))


def test_finishing_a_package_leaves_the_caller_s_updates_alone(
    compressed: CompressReport, tmp_path: Path
) -> None:
    package = _selected_copy(compressed, tmp_path)
    updates = {"compression": {"checked": True}, "gates": {"passed": True, "results": []}}
    given = copy.deepcopy(updates)

    _package.finish(package, verify_package(package), updates)

    assert updates == given
    manifest = verify_package(package)
    assert manifest["compression"]["checked"] is True
    assert manifest["compression"]["representation"] == "onnx"
    assert manifest["gates"] == {"passed": True, "results": []}


def test_the_selected_package_predicts_like_its_parent(
    trained: Trained, compressed: CompressReport
) -> None:
    assert compressed.package_dir is not None
    parent = trained.package()
    rows = read_holdout(parent, read_manifest(parent)).drop(columns=["defaulted"])

    expected = Predictor.open(parent).predict(rows)
    got = Predictor.open(compressed.package_dir).predict(rows)

    assert got.probabilities is not None and expected.probabilities is not None
    assert np.max(np.abs(got.probabilities - expected.probabilities)) <= 1e-3
    assert (got.predictions == expected.predictions).mean() > 0.99


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_model_onnx_is_refused_by_name(
    compressed: CompressReport, tmp_path: Path, damage: str
) -> None:
    package = _selected_copy(compressed, tmp_path)
    model = package / "model.onnx"
    data = model.read_bytes()
    model.write_bytes(data[: len(data) // 2] if damage == "truncate" else data[:-1] + b"\x00")

    with pytest.raises(IntegrityError, match=r"model\.onnx .* was altered"):
        Predictor.open(package)


def test_a_non_onnx_file_with_a_matching_hash_is_still_refused(
    compressed: CompressReport, tmp_path: Path
) -> None:
    package = _selected_copy(compressed, tmp_path)
    manifest = json.loads((package / "MANIFEST.json").read_text())
    del manifest["files"]
    write_package(package, manifest, {"model.onnx": b"tree\nversion=v4\n"})

    with pytest.raises(PackageError, match=r"model\.onnx is not a valid ONNX model"):
        Predictor.open(package)


def test_a_budget_no_candidate_meets_raises_with_the_table(
    trained: Trained, tmp_path: Path
) -> None:
    package = trained.package()
    frame = read_holdout(package, read_manifest(package))
    options = CompressSpec(candidates=["trees"])

    with pytest.raises(CompressionError, match="no candidate is smaller") as caught:
        compress_package(package, frame, options, tmp_path, parent=PARENT)

    report = caught.value.report
    assert report.selected is None and report.package_dir is None
    assert [r.status for r in report.rows] == ["baseline"] + ["over tolerance"] * 4
    text = str(caught.value)
    assert "trees-12-onnx" in text and "max diff" in text and "baseline" in text


def test_a_looser_tolerance_selects_the_smallest_pruned_model(
    trained: Trained, tmp_path: Path
) -> None:
    package = trained.package()
    frame = read_holdout(package, read_manifest(package))
    options = CompressSpec(candidates=["trees"], tolerance=1.0, max_metric_drop=1.0)

    report = compress_package(package, frame, options, tmp_path, parent=PARENT)

    sizes = {r.representation: r.size_bytes or 0 for r in report.rows[1:]}
    assert report.selected == min(sizes, key=sizes.__getitem__) == "trees-12-onnx"
    manifest = read_manifest(report.package_dir or tmp_path)
    block = manifest["compression"]
    assert (block["iterations"], block["of"], block["trees"]) == (12, 25, 12)  # binary: one each


def test_an_archive_target_counts_compressed_bytes(trained: Trained, tmp_path: Path) -> None:
    package = trained.package()
    frame = read_holdout(package, read_manifest(package))
    serve = compress_package(
        package, frame, CompressSpec(candidates=["onnx"]), tmp_path / "s", parent=PARENT
    )
    archive = compress_package(
        package,
        frame,
        CompressSpec(candidates=["onnx"], target="archive"),
        tmp_path / "a",
        parent=PARENT,
    )

    for s_row, a_row in zip(serve.rows, archive.rows, strict=True):
        assert a_row.size_bytes is not None and s_row.size_bytes is not None
        assert a_row.size_bytes < s_row.size_bytes
        assert a_row.model_bytes == s_row.model_bytes


def test_an_unknown_metric_is_refused(trained: Trained, tmp_path: Path) -> None:
    package = trained.package()
    frame = read_holdout(package, read_manifest(package))

    with pytest.raises(SpecError, match="'rmse' is not measured for this model"):
        compress_package(package, frame, CompressSpec(metric="rmse"), tmp_path, parent=PARENT)
