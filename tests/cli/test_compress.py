"""``atoll compress`` end to end: a real registry, real packages, real ONNX Runtime."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner, Result

from atoll import api
from atoll.cli.main import cli
from atoll.errors import PackageError
from atoll.model.holdout import read_holdout
from atoll.model.package import read_manifest
from atoll.store.gc import collect_garbage
from tests.model.compressing import LOGISTIC, UNCONVERTIBLE, Trained, scaled_features, train

pytestmark = pytest.mark.xdist_group("compress-cli")  # one worker trains the projects once

CLEAN_ENV: dict[str, str | None] = {
    "ATOLL_DB_URL": None,
    "ATOLL_ARTIFACT_ROOT": None,
    "ATOLL_PROJECT_DIR": None,
    "ATOLL_SIGNING_KEY": None,
    "ATOLL_ACTOR": "compress-test",
    "COLUMNS": "200",
}


def compress(project: Trained, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        cli,
        ["-C", str(project.root), "compress", *args],
        env=CLEAN_ENV | (env or {}),
        prog_name="atoll",
    )


def versions(project: Trained) -> list[int]:
    return [v.version for v in api.list_versions("credit-risk", settings=project.settings)]


@pytest.fixture(scope="module")
def linear(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A logistic regression: the model type every candidate but trees applies to."""
    return train(
        tmp_path_factory.mktemp("linear"), model=LOGISTIC, features=scaled_features(), gates=[]
    )


@pytest.fixture(scope="module")
def unconvertible(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A model skl2onnx cannot convert, with a pii feature (so its package keeps no hold-out)."""
    demo = yaml.safe_load(resources.files("atoll.data").joinpath("demo_spec.yaml").read_text())
    columns = demo["columns"]
    columns["income"]["pii"] = True
    return train(tmp_path_factory.mktemp("dummy"), model=UNCONVERTIBLE, columns=columns, gates=[])


@pytest.fixture(scope="module")
def child(linear: Trained) -> dict[str, Any]:
    """``atoll compress credit-risk@1 --json`` once: what it printed (the child is registered)."""
    result = compress(linear, "credit-risk@1", "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def test_a_dry_run_measures_every_candidate_and_registers_nothing(linear: Trained) -> None:
    before = versions(linear)

    result = compress(linear, "credit-risk@1", "--dry-run")

    assert result.exit_code == 0, (result.stdout, result.stderr)
    table = result.stdout
    for name in ("native", "onnx", "onnx-fp16", "onnx-int8", "trees"):
        assert f"│ {name} " in table, name
    assert "trees: tree pruning is implemented for LightGBM models only" in table
    assert "dry run: onnx" in table and "would be registered (parent credit-risk@1)" in table
    assert versions(linear) == before


def test_the_winner_is_registered_as_a_child_that_serves(
    linear: Trained, child: dict[str, Any]
) -> None:
    rows = {row["representation"]: row for row in child["rows"]}
    chosen = rows[child["selected"]]
    assert child["selected"] in ("onnx", "onnx-fp16", "onnx-int8")
    assert chosen["status"] == "selected" and chosen["max_diff"] <= child["tolerance"]
    assert rows["onnx-fp16"]["size_bytes"] and rows["onnx-int8"]["size_bytes"]  # both built
    ref = f"credit-risk@{child['registered']['version']}"

    info = api.show(ref, settings=linear.settings)
    parent = api.show("credit-risk@1", settings=linear.settings)
    assert info.tags == {"compressed_from": "1", "representation": child["selected"]}
    assert info.status == "ready"
    assert info.summary["compression"]["parent"] == "credit-risk@1"
    assert info.summary["metrics"] == parent.summary["metrics"]  # compared on the same rows
    assert info.summary["compression"]["metrics"]["roc_auc"] == chosen["metric"]
    assert info.summary["gates"] == {"passed": True, "results": []}  # the project has none
    manifest = read_manifest(linear.package(ref))
    assert manifest["metrics"] == read_manifest(linear.package())["metrics"]
    assert manifest["model"]["format"] == "onnx"
    assert manifest["lineage"]["parent"] == {
        "name": "credit-risk",
        "version": 1,
        "manifest_digest": parent.manifest_digest,
    }

    frame = read_holdout(linear.package(), read_manifest(linear.package()))
    rows_in = frame.drop(columns=["defaulted"])
    old = api.load("credit-risk@1", settings=linear.settings).predict(rows_in)
    new = api.load(ref, settings=linear.settings).predict(rows_in)
    assert new.probabilities is not None and old.probabilities is not None
    assert np.max(np.abs(new.probabilities - old.probabilities)) <= child["tolerance"]


def test_a_compressed_version_is_not_converted_again(
    linear: Trained, child: dict[str, Any]
) -> None:
    """The child's weights are float16 already: nothing is left to shrink, so nothing wins."""
    assert child["selected"] == "onnx-fp16"
    ref = f"credit-risk@{child['registered']['version']}"

    result = compress(linear, ref, "--dry-run", "--json")

    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: no candidate is smaller than the native model")
    out = json.loads(result.stdout)
    assert out["registered"] is None and out["selected"] is None
    rows = {row["representation"]: (row["status"], row["reason"]) for row in out["rows"]}
    assert rows == {
        "native": ("baseline", ""),
        "onnx": ("not built", "the model is ONNX already"),
        "onnx-fp16": ("not built", "not applicable: the ONNX graph has no float32 weight tensors"),
        "onnx-int8": (
            "not built",
            "not applicable: the ONNX graph has no float32 MatMul or Gemm weights",
        ),
        "trees": ("not built", "tree pruning is implemented for LightGBM models only"),
    }
    assert out["rows"][0]["model_bytes"] > 0


def test_a_budget_nothing_meets_prints_the_table_and_registers_nothing(linear: Trained) -> None:
    spec_path = linear.root / "atoll.yaml"
    original = spec_path.read_text()
    spec = yaml.safe_load(original)
    spec["compress"] = {"tolerance": 1e-12, "candidates": ["onnx", "onnx-fp16"]}
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    before = versions(linear)
    try:
        result = compress(linear, "credit-risk@1")
    finally:
        spec_path.write_text(original)

    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: no candidate is smaller than the native model")
    assert "nothing was registered" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "│ onnx " in result.stdout and "over tolerance" in result.stdout
    assert "onnx: max diff" in result.stdout
    assert versions(linear) == before


def test_an_unconvertible_model_keeps_its_native_format_and_says_why(
    unconvertible: Trained,
) -> None:
    data = unconvertible.root / "data" / "applications.csv"
    result = compress(unconvertible, "credit-risk@1", "--data", str(data), "--json")

    assert result.exit_code == 1, (result.stdout, result.stderr)
    out = json.loads(result.stdout)
    assert out["registered"] is None and out["selected"] is None
    assert out["holdout"] == {"source": str(data), "rows": 1500, "dropped": 0}
    reasons = {row["representation"]: (row["status"], row["reason"]) for row in out["rows"]}
    assert reasons["onnx"] == ("not built", "skl2onnx has no converter for DummyClassifier")
    assert reasons["onnx-fp16"] == ("not built", "needs the onnx candidate, which was not built")
    assert versions(unconvertible) == [1]


def test_a_package_without_a_holdout_needs_a_data_file(unconvertible: Trained) -> None:
    assert "holdout" not in read_manifest(unconvertible.package())

    result = compress(unconvertible, "credit-risk@1")

    assert result.exit_code == 1
    assert "keeps no hold-out rows" in result.stderr and "pass a data file" in result.stderr


def test_bad_options_are_usage_errors(linear: Trained) -> None:
    assert compress(linear, "credit-risk@1", "--target", "edge").exit_code == 2
    assert compress(linear, "credit-risk@1", "--max-metric-drop", "-1").exit_code == 2
    unknown = compress(linear, "credit-risk@1", "--metric", "rmse")
    assert unknown.exit_code == 1 and "'rmse' is not measured" in unknown.stderr


def test_a_child_failing_a_gate_on_its_rows_is_registered_gate_failed(tmp_path: Path) -> None:
    gated = train(
        tmp_path / "gated",
        gates=[{"metric": "roc_auc", "min": 0.6}],
        compress={"candidates": ["onnx"]},
    )
    frame = pd.read_csv(gated.root / "data" / "applications.csv")
    frame["defaulted"] = 1 - frame["defaulted"]  # every row ranked the wrong way round
    flipped = tmp_path / "flipped.csv"
    frame.to_csv(flipped, index=False)
    assert gated.version.status == "ready"

    passing = compress(gated, "credit-risk@1", "--json")
    failing = compress(gated, "credit-risk@1", "--data", str(flipped), "--json")

    assert passing.exit_code == failing.exit_code == 0, (passing.stderr, failing.stderr)
    ready = api.show("credit-risk@2", settings=gated.settings)
    failed = api.show("credit-risk@3", settings=gated.settings)
    assert (ready.status, failed.status) == ("ready", "gate_failed")
    assert ready.summary["gates"]["passed"] is True
    (gate,) = failed.summary["gates"]["results"]
    assert gate["passed"] is False and gate["value"] < 0.5
    assert gate["value"] == failed.summary["compression"]["metrics"]["roc_auc"]
    assert failed.summary["metrics"] == ready.summary["metrics"] == gated.version.summary["metrics"]
    assert json.loads(failing.stdout)["gates"]["passed"] is False


def test_a_signed_store_gets_a_signed_child(tmp_path: Path) -> None:
    key = {"ATOLL_SIGNING_KEY": "compress-test-signing-key-0123456789"}
    signed = train(tmp_path / "signed", environ=key, compress={"candidates": ["onnx"]})

    result = compress(signed, "credit-risk@1", env=key)

    assert result.exit_code == 0, (result.stdout, result.stderr)
    child = api.load("credit-risk@2", settings=signed.settings)  # verifies the signature
    assert child.manifest["signature"].startswith("hmac-sha256:")
    assert child.manifest["model"]["format"] == "onnx"


def test_an_archive_target_registers_compressed_blobs_that_load(linear: Trained) -> None:
    result = compress(linear, "credit-risk@1", "--target", "archive", "--json")

    assert result.exit_code == 0, (result.stdout, result.stderr)
    version = json.loads(result.stdout)["registered"]["version"]
    info = api.show(f"credit-risk@{version}", settings=linear.settings)
    assert info.summary["compression"]["target"] == "archive"
    blobs = [p for p in Path(linear.settings.artifact_root).rglob("*") if p.is_file()]
    assert any(p.suffix == ".zst" for p in blobs)
    predictor = api.load(f"credit-risk@{version}", settings=linear.settings)
    assert predictor.manifest["model"]["format"] == "onnx"


def test_a_child_shares_its_parent_s_holdout_and_gc_keeps_it_for_the_child(
    tmp_path: Path,
) -> None:
    """The child refers to the parent's hold-out blob: retiring the parent must not lose it."""
    project = train(tmp_path / "shared", compress={"candidates": ["onnx"]}, gates=[])
    assert compress(project, "credit-risk@1").exit_code == 0
    parent, child = (
        read_manifest(project.package()),
        read_manifest(project.package("credit-risk@2")),
    )
    digest = parent["files"]["holdout.parquet"]
    assert "holdout.parquet" not in child["files"]
    assert child["references"] == {"holdout.parquet": digest}
    api.promote("credit-risk@2", settings=project.settings)

    with api.open_registry(project.settings) as registry:
        report = collect_garbage(registry, keep_last=1, grace_s=0)
        assert report.deleted_versions == ["credit-risk@1"]
        assert registry.artifacts.exists(digest)  # the child still refers to it

    # the child can be compressed again: its hold-out is read from the shared blob
    again = compress(project, "credit-risk@2", "--dry-run", "--json")
    assert json.loads(again.stdout)["holdout"]["rows"] == 300, again.stderr


def test_a_package_referring_to_a_blob_the_store_lacks_is_refused(tmp_path: Path) -> None:
    project = train(tmp_path / "lacking", compress={"candidates": ["onnx"]}, gates=[])
    assert compress(project, "credit-risk@1").exit_code == 0
    # another split: other hold-out rows, so this store lacks the first one's blob
    other = train(tmp_path / "other", gates=[], split={"method": "time", "test_size": 0.3})

    with api.open_registry(other.settings) as registry:
        with pytest.raises(PackageError, match="does not hold"):
            registry.register(project.package("credit-risk@2"), "credit-risk")
        assert [v.version for v in registry.list_versions("credit-risk")] == [1]
