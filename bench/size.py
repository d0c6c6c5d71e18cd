"""Benchmark: model artifact sizes as joblib, as atoll packages, and after `atoll compress`.

Four models, each behind the demo spec's one-hot wrangling, trained on the
demo's credit-risk data: a HistGradientBoosting (200 iterations), a RandomForest
(300 trees, max depth 12), a LightGBM (300 trees) and a LogisticRegression.
For each: the size of a joblib pickle of the fitted model and wrangling (the
usual practice; written and measured only, never loaded), of atoll's native
package, and of the representation `atoll compress` selects (default budget:
roc_auc drop <= 0.001, probabilities within 1e-3); the metric drop, the largest
probability change, load time, 1-row and 10k-row latency through Predictor
(wrangling + model, one numeric thread, as a server worker runs), and the model
alone on one encoded row. Then the installed size of the lean serving install
(`atoll[serve-lite]`) beside the full one (`atoll[full]`), from two venvs under
bench/out/venvs (built by --install-sizes, reused while pyproject.toml is unchanged).

    python bench/size.py                   # 200,000 rows (about 5 minutes on 2 cores)
    python bench/size.py --quick           # 5,000 rows, a look in a minute or two
    python bench/size.py --install-sizes   # and build the venvs first where needed (~2 min)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import compress as compress_bench
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENVS = HERE / "out" / "venvs"
INSTALLS = {"lean": "serve-lite", "full": "full"}
STAMP = "atoll-bench-pyproject.sha256"
"""Which pyproject.toml a venv was built from (a file in the venv)."""

MODELS: dict[str, tuple[str, dict[str, Any] | None]] = {
    # name: (bench/compress.py variant the spec starts from, model section put over it)
    "hist-gb": (
        "hist-gb",
        {
            "estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
            "params": {"max_iter": 200, "early_stopping": False, "random_state": 0},
        },
    ),
    "random-forest": (
        "logistic",  # every number imputed: the same rows for every tree library
        {
            "estimator": "sklearn.ensemble.RandomForestClassifier",
            "params": {"n_estimators": 300, "max_depth": 12, "random_state": 0},
        },
    ),
    "lightgbm": (
        "lightgbm",
        {
            "estimator": "lightgbm.LGBMClassifier",
            "params": {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 31},
        },
    ),
    "logistic": ("logistic", None),  # LogisticRegression on scaled numbers
}
TREE_ENSEMBLES = ("hist-gb", "random-forest", "lightgbm")
MAX_SIZE_RATIO = 0.25
MAX_DROP = 0.001
MIN_SPEEDUP = 20.0
MAX_INSTALL_RATIO = 1 / 3


@dataclass(frozen=True)
class Result:
    name: str
    joblib_bytes: int
    joblib_zstd_bytes: int  # the same pickle zstd-compressed like an archive: for fairness
    native: Any  # compress report Row of the native package
    chosen: Any | None  # the selected Row, or None when nothing qualified
    native_model_us: float
    chosen_model_us: float | None
    chosen_archive_bytes: (
        int | None
    )  # the chosen package zstd-compressed, as an archive store holds it


def spec_for(root: Path, rows: int, name: str) -> Path:
    variant, model = MODELS[name]
    spec_path = compress_bench.project(root, rows, variant)
    if model is not None:
        spec = yaml.safe_load(spec_path.read_text())
        spec["model"] = model
        spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return spec_path


def joblib_sizes(predictor: Any, path: Path) -> tuple[int, int]:
    """Bytes of ``joblib.dump`` of the fitted model and the wrangling state, and zstd of that."""
    import joblib
    import zstandard

    from atoll.model.compress.cost import ARCHIVE_LEVEL

    scorer = predictor.scorer
    model = scorer.estimator if hasattr(scorer, "estimator") else scorer.predict.__self__
    joblib.dump({"wrangling": predictor.wrangler.to_state(), "model": model}, path)
    packed = zstandard.ZstdCompressor(level=ARCHIVE_LEVEL).compress(path.read_bytes())
    return path.stat().st_size, len(packed)


def run(name: str, rows: int, scratch: Path) -> Result:
    from threadpoolctl import threadpool_limits

    from atoll import api
    from atoll.errors import CompressionError
    from atoll.model import holdout
    from atoll.model.compress import compress_package
    from atoll.model.compress.cost import package_size
    from atoll.model.package import read_manifest
    from atoll.settings import Settings
    from atoll.spec_compress import CompressSpec

    root = scratch / name
    spec_path = spec_for(root, rows, name)
    settings = Settings.from_env(project_dir=root, environ={})
    print(f"training {name} on {rows:,} rows ...", flush=True)
    outcome = api.train(spec_path, settings=settings)
    with api.open_registry(settings) as registry:
        package = registry.fetch_package(f"{outcome.version.name}@{outcome.version.version}")
    native = outcome.result.predictor
    joblib_bytes, joblib_zstd = joblib_sizes(native, scratch / f"{name}.joblib")
    frame = holdout.read_holdout(package, read_manifest(package))
    work = scratch / f"{name}-candidates"
    parent = {"name": outcome.version.name, "version": outcome.version.version}
    print(f"compressing {name} ...", flush=True)
    try:
        report = compress_package(package, frame, CompressSpec(), work, parent=parent)
    except CompressionError as exc:
        report = exc.report
    print(report.text(), flush=True)
    by_name = {row.representation: row for row in report.rows}
    chosen = by_name.get(report.selected) if report.selected else None
    labelled = holdout.labelled(frame, native.schema, native.task, native.classes)
    chosen_us = archive = None
    with threadpool_limits(1):
        native_us = compress_bench.model_only_us(package, labelled)
        if chosen is not None:
            chosen_us = compress_bench.model_only_us(work / chosen.representation, labelled)
            archive = package_size(work / chosen.representation, "archive")
    native_row = by_name["native"]
    return Result(
        name, joblib_bytes, joblib_zstd, native_row, chosen, native_us, chosen_us, archive
    )


def size(value: int | None) -> str:
    from atoll._sizes import human_bytes

    return human_bytes(value)


def share(part: int | None, whole: int) -> str:
    return "-" if part is None else f"{part / whole:.1%}"


def num(value: float | None, form: str) -> str:
    return "-" if value is None else form.format(value)


def print_table(headers: list[str], lines: list[list[str]]) -> None:
    """Fixed width: the first column left-aligned, numbers right-aligned."""
    table = [headers, *lines]
    widths = [max(len(line[i]) for line in table) for i in range(len(headers))]
    for line in table:
        cells = [line[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)]
        print("  ".join(cells))


def sizes_table(results: list[Result]) -> None:
    headers = [
        "model", "joblib", "joblib zstd", "native pkg", "native model", "compressed", "pkg",
        "model", "archive", "pkg/joblib", "model/joblib", "archive/joblib", "auc", "drop",
        "max diff",
    ]  # fmt: skip
    lines = []
    for r in results:
        c = r.chosen
        lines.append([
            r.name, size(r.joblib_bytes), size(r.joblib_zstd_bytes), size(r.native.size_bytes),
            size(r.native.model_bytes),
            c.representation if c else "(none)", size(c.size_bytes if c else None),
            size(c.model_bytes if c else None), size(r.chosen_archive_bytes),
            share(c.size_bytes if c else None, r.joblib_bytes),
            share(c.model_bytes if c else None, r.joblib_bytes),
            share(r.chosen_archive_bytes, r.joblib_bytes),
            num((c or r.native).metric, "{:.4f}"), num(c.drop if c else None, "{:+.4f}"),
            num(c.max_diff if c else None, "{:.1e}"),
        ])  # fmt: skip
    print(
        "\nsizes (pkg: every file of the package but its hold-out rows, which a compressed"
        " child shares\nwith its parent; model: the model file; archive: the compressed"
        " package zstd-compressed,\nas --target archive stores it;"
        "\njoblib zstd: the pickle compressed the same way, for comparison)"
    )
    print_table(headers, lines)


def speed_table(results: list[Result]) -> None:
    headers = [
        "model", "load ms", "load ms (c)", "1-row us", "1-row us (c)", "x", "model us",
        "model us (c)", "x", "10k ms", "10k ms (c)",
    ]  # fmt: skip
    lines = []
    for r in results:
        n, c = r.native, r.chosen
        lines.append([
            r.name, num(n.load_ms, "{:.1f}"), num(c.load_ms if c else None, "{:.1f}"),
            num(n.one_row_us, "{:.0f}"), num(c.one_row_us if c else None, "{:.0f}"),
            num(n.one_row_us / c.one_row_us if c else None, "{:.1f}"),
            num(r.native_model_us, "{:.1f}"), num(r.chosen_model_us, "{:.1f}"),
            num(r.native_model_us / r.chosen_model_us if r.chosen_model_us else None, "{:.1f}"),
            num(n.rows_10k_ms, "{:.1f}"), num(c.rows_10k_ms if c else None, "{:.1f}"),
        ])  # fmt: skip
    print("\nspeed, native vs compressed (c); 1-row: Predictor (wrangling + model); model: alone")
    print_table(headers, lines)


def site_packages_bytes(venv: Path) -> int:
    """Bytes of every file under the venv's site-packages (pip and setuptools included)."""
    [site] = (venv / "lib").glob("python3*/site-packages")
    return tree_bytes(site)


def largest(venv: Path, count: int = 6) -> str:
    """The biggest top-level entries of the venv's site-packages, e.g. ``pandas 84.1 MB``."""
    [site] = (venv / "lib").glob("python3*/site-packages")
    sizes = {entry.name: tree_bytes(entry) for entry in site.iterdir()}
    top = sorted(sizes.items(), key=lambda item: -item[1])[:count]
    return ", ".join(f"{name} {size(value)}" for name, value in top)


def tree_bytes(path: Path) -> int:
    if not path.is_dir():
        return path.lstat().st_size
    return sum(
        (Path(folder) / name).lstat().st_size
        for folder, _, names in os.walk(path)
        for name in names
    )


def build_venv(venv: Path, extra: str, scratch: Path) -> None:
    """A fresh venv with ``atoll[extra]``, built by pip from a copy of this checkout."""
    source = scratch / f"source-{extra}"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(REPO / "src", source / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    print(f"installing atoll[{extra}] into {venv} ...", flush=True)
    done = subprocess.run([*pip, f"{source}[{extra}]"], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"pip install failed:\n{done.stdout}\n{done.stderr}")


def install_sizes(build: bool, scratch: Path) -> dict[str, int] | None:
    """Sizes of the lean and full venvs: reused while pyproject.toml is unchanged.

    With ``build``, a venv that is missing or was built from another
    pyproject.toml is built anew; without it, such a venv is reported and skipped.
    """
    sizes = {}
    stamp = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
    for name, extra in INSTALLS.items():
        venv = VENVS / name
        current = (venv / STAMP).is_file() and (venv / STAMP).read_text() == stamp
        if build and not current:
            build_venv(venv, extra, scratch)
            (venv / STAMP).write_text(stamp)
        elif not current:
            state = "was built from another pyproject.toml" if venv.exists() else "is missing"
            print(f"\ninstall sizes: {venv} {state}; run with --install-sizes to build it")
            return None
        sizes[name] = site_packages_bytes(venv)
    lean, full = sizes["lean"], sizes["full"]
    print("\ninstalled size (site-packages of a fresh venv, pip and setuptools included)")
    print(f"  lean  atoll[serve-lite]  {size(lean):>9}   largest: {largest(VENVS / 'lean')}")
    print(f"  full  atoll[full]        {size(full):>9}   largest: {largest(VENVS / 'full')}")
    print(f"  lean / full              {lean / full:9.1%}")
    return sizes


def targets(results: list[Result], sizes: dict[str, int] | None) -> None:
    print("\ntargets")
    for r in results:
        if r.name not in TREE_ENSEMBLES:
            continue
        c = r.chosen
        if c is None:
            print(f"  FAIL {r.name}: no representation qualified (see its table above)")
            continue
        within = c.drop <= MAX_DROP
        for what, value in (("package", c.size_bytes), ("zstd archive", r.chosen_archive_bytes)):
            ratio = value / r.joblib_bytes
            print(
                f"  {verdict(ratio <= MAX_SIZE_RATIO and within)} {r.name}: compressed {what} "
                f"{ratio:.1%} of joblib (target <= 25%), auc drop {c.drop:+.4f} "
                f"(target <= {MAX_DROP})"
            )
    hgb = next((r for r in results if r.name == "hist-gb"), None)
    if hgb is not None and hgb.chosen is not None and hgb.chosen_model_us:
        model_x = hgb.native_model_us / hgb.chosen_model_us
        e2e_x = hgb.native.one_row_us / hgb.chosen.one_row_us
        print(
            f"  {verdict(model_x >= MIN_SPEEDUP)} hist-gb 1-row: model alone {model_x:.1f}x "
            f"faster than scikit-learn (target >= {MIN_SPEEDUP:.0f}x); "
            f"with atoll's wrangling {e2e_x:.1f}x"
        )
    if sizes is not None:
        ratio = sizes["lean"] / sizes["full"]
        print(
            f"  {verdict(ratio <= MAX_INSTALL_RATIO)} lean install {ratio:.1%} of the full one "
            "(target <= 33.3%)"
        )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true", help="5,000 rows")
    parser.add_argument("--model", choices=list(MODELS), nargs="*", default=list(MODELS))
    parser.add_argument(
        "--install-sizes",
        action="store_true",
        help=f"build the lean and full venvs under {VENVS} where missing or out of date",
    )
    args = parser.parse_args()
    rows = 5_000 if args.quick else args.rows
    scratch = Path(tempfile.mkdtemp(prefix="atoll-bench-size-"))
    try:
        results = [run(name, rows, scratch) for name in args.model]
        print(f"\n== {rows:,} rows; joblib: written and measured, never loaded ==")
        sizes_table(results)
        speed_table(results)
        sizes = install_sizes(args.install_sizes, scratch)
        targets(results, sizes)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
