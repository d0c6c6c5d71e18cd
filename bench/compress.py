"""Benchmark: `atoll compress` on three variants of the demo model.

Trains the demo spec (credit-risk) with LightGBM (the demo's own model), a
scikit-learn HistGradientBoosting and a LogisticRegression (numeric columns
scaled), then runs every compression candidate on each package's hold-out rows.
For each variant it prints the compress table, then each measured
representation's size and 1-row latency as ratios to the native package:
end to end through ``Predictor.predict_valid`` (wrangling + model, what a
server runs per row) and for the model alone (``scorer.scores`` on one
encoded row). One numeric thread throughout, as in a server worker.

    python bench/compress.py            # 50,000 rows (the demo's size)
    python bench/compress.py --quick    # 5,000 rows, for a look in a few seconds
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

VARIANTS: dict[str, dict[str, Any]] = {
    "lightgbm": {},  # the demo spec as it is: LGBMClassifier, 200 trees
    "hist-gb": {
        "estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
        "params": {"max_iter": 200, "random_state": 0},
    },
    "logistic": {
        "estimator": "sklearn.linear_model.LogisticRegression",
        "params": {"max_iter": 2000},
    },
}


def project(root: Path, rows: int, variant: str) -> Path:
    from atoll import api

    spec_path = api.init_project(root, demo=True, rows=rows, seed=0)
    spec = yaml.safe_load(spec_path.read_text())
    spec["gates"] = []
    if VARIANTS[variant]:
        spec["model"] = VARIANTS[variant]
    if variant == "logistic":  # impute what the demo leaves as it is, then scale every number
        numbers = [n for n, c in spec["columns"].items() if c["type"] in ("int", "float")]
        numbers = [n for n in numbers if spec["columns"][n].get("role") is None]
        numbers.remove(spec["target"])
        done = {n for step in spec["features"] for n in step["columns"]}
        spec["features"].append(
            {"step": "impute", "columns": sorted(set(numbers) - done), "strategy": "median"}
        )
        spec["features"].append({"step": "scale", "columns": numbers})
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return spec_path


def model_only_us(directory: Path, rows: Any) -> float:
    """Median microseconds of the model alone scoring one already-encoded row."""
    from atoll.model.predictor import Predictor

    predictor = Predictor.open(directory)
    matrix = predictor.wrangler.matrix({k: v[:1] for k, v in rows.columns.items()})
    return median_s(lambda: predictor.scorer.scores(matrix)) * 1e6


def median_s(call: Callable[[], object], repeats: int = 500) -> float:
    call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(variant: str, rows: int, scratch: Path) -> None:
    from threadpoolctl import threadpool_limits

    from atoll import api
    from atoll.errors import CompressionError
    from atoll.model import holdout
    from atoll.model.compress import compress_package
    from atoll.model.package import read_manifest
    from atoll.settings import Settings
    from atoll.spec_compress import CompressSpec

    root = scratch / variant
    spec_path = project(root, rows, variant)
    settings = Settings.from_env(project_dir=root, environ={})
    outcome = api.train(spec_path, settings=settings)
    with api.open_registry(settings) as registry:
        package = registry.fetch_package(f"{outcome.version.name}@{outcome.version.version}")
    manifest = read_manifest(package)
    frame = holdout.read_holdout(package, manifest)
    work = scratch / f"{variant}-candidates"
    parent = {"name": outcome.version.name, "version": outcome.version.version}
    try:
        report = compress_package(package, frame, CompressSpec(), work, parent=parent)
    except CompressionError as exc:
        report = exc.report
    estimator = manifest["model"]["estimator"].rsplit(".", 1)[-1]
    print(f"\n== {variant} ({estimator}, {rows:,} rows, selected: {report.selected}) ==")
    print(report.text())
    native = outcome.result.predictor
    labelled = holdout.labelled(frame, native.schema, native.task, native.classes)
    with threadpool_limits(1):
        ratios(report, package, work, labelled)


def ratios(report: Any, package: Path, work: Path, rows: Any) -> None:
    native = report.rows[0]
    native_model = model_only_us(package, rows)
    print(f"{'vs native':<16}{'size':>8}{'1-row':>8}{'model 1-row us':>16}{'x faster':>10}")
    for row in report.rows:
        if row.size_bytes is None:
            continue
        native_row = row.representation == "native"
        model_us = native_model if native_row else model_only_us(work / row.representation, rows)
        print(
            f"{row.representation:<16}{row.size_bytes / native.size_bytes:>7.2f}x"
            f"{row.one_row_us / native.one_row_us:>7.2f}x{model_us:>16.1f}"
            f"{native_model / model_us:>9.1f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--quick", action="store_true", help="5,000 rows")
    parser.add_argument("--variant", choices=list(VARIANTS), nargs="*", default=list(VARIANTS))
    args = parser.parse_args()
    rows = 5_000 if args.quick else args.rows
    scratch = Path(tempfile.mkdtemp(prefix="atoll-bench-compress-"))
    try:
        for variant in args.variant:
            run(variant, rows, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
