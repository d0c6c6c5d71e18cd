"""Benchmark: `atoll train` against a bare scikit-learn Pipeline doing the same work.

Both sides read the same CSV, hold out the same latest 20% of rows, apply the
same wrangling (median imputation, log1p, one-hot), fit the same LightGBM
model and score the held-out rows. atoll additionally validates, profiles,
evaluates (metrics, curves, calibration, fairness), packages with hashes and
registers in SQLite. Each run is a fresh subprocess so peak memory is its own.

    python bench/train.py                   # 50k and 500k rows, best of 2
    python bench/train.py --rows 50000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMO_SPEC = HERE.parent / "src" / "atoll" / "data" / "demo_spec.yaml"
LGBM_PARAMS = {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 31, "verbosity": -1}


def run_atoll(csv: Path, workdir: Path) -> dict[str, float]:
    started = time.perf_counter()
    # Libraries are imported before the clock starts, on both sides; the cold
    # import time is reported in its own column.
    import fairlearn.metrics  # noqa: F401
    import lightgbm  # noqa: F401
    import sklearn.metrics  # noqa: F401

    import atoll.model.train
    import atoll.store.registry  # noqa: F401
    from atoll import api
    from atoll.settings import Settings

    imports = time.perf_counter() - started
    project = workdir / "project"
    project.mkdir()
    spec = DEMO_SPEC.read_text().replace("data/applications.csv", str(csv))
    (project / "atoll.yaml").write_text(spec)
    start = time.perf_counter()
    outcome = api.train(project / "atoll.yaml", settings=Settings.from_env(project_dir=project))
    wall = time.perf_counter() - start
    timings = outcome.result.manifest["lineage"]["timings"]
    return {
        "wall": wall,
        "fit": timings["fit"],
        "auc": outcome.result.evaluation["metrics"]["roc_auc"],
        "imports": imports,
    }


def run_bare(csv: Path, workdir: Path) -> dict[str, float]:
    started = time.perf_counter()
    import lightgbm as lgb
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    start = time.perf_counter()
    imports = start - started
    frame = pd.read_csv(csv, engine="pyarrow")
    frame["application_date"] = pd.to_datetime(frame["application_date"])
    order = np.argsort(frame["application_date"].to_numpy(), kind="stable")
    cut = len(frame) - round(len(frame) * 0.2)
    train, test = frame.iloc[np.sort(order[:cut])], frame.iloc[np.sort(order[cut:])]
    log1p = FunctionTransformer(lambda x: np.log1p(np.clip(x, 0, None)))
    wrangle = ColumnTransformer(
        [
            ("impute_log", make_pipeline(SimpleImputer(strategy="median"), log1p), ["income"]),
            ("impute", SimpleImputer(strategy="median"), ["employment_years", "debt_to_income"]),
            ("log", log1p, ["loan_amount"]),
            (
                "onehot",
                OneHotEncoder(handle_unknown="ignore"),
                ["home_ownership", "purpose", "term_months"],
            ),
            ("rest", "passthrough", ["age", "credit_score", "num_open_accounts"]),
        ]
    )
    pipeline = Pipeline([("wrangle", wrangle), ("model", lgb.LGBMClassifier(**LGBM_PARAMS))])
    fit_start = time.perf_counter()
    pipeline.fit(train, train["defaulted"])
    fit = time.perf_counter() - fit_start
    auc = roc_auc_score(test["defaulted"], pipeline.predict_proba(test)[:, 1])
    return {"wall": time.perf_counter() - start, "fit": fit, "auc": float(auc), "imports": imports}


def child(variant: str, csv: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        result = (run_atoll if variant == "atoll" else run_bare)(csv, Path(scratch))
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def measure(variant: str, csv: Path, repeat: int) -> dict[str, float]:
    runs = []
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, __file__, "--child", variant, "--csv", str(csv)],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return min(runs, key=lambda r: r["wall"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[50_000, 500_000])
    parser.add_argument("--repeat", type=int, default=2, help="runs per cell; the best is shown")
    parser.add_argument("--child", choices=["atoll", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.csv)
        return
    from atoll.data.synthetic import credit_risk

    out = Path(tempfile.mkdtemp(prefix="atoll-bench-"))
    try:
        rows = []
        for n in args.rows:
            csv = out / f"credit_{n}.csv"
            credit_risk(n, seed=0).to_csv(csv, index=False)
            bare, atoll = measure("bare", csv, args.repeat), measure("atoll", csv, args.repeat)
            rows.append((n, bare, atoll))
            print(f"measured {n:,} rows", file=sys.stderr)
        report(rows)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def report(rows: list[tuple[int, dict[str, float], dict[str, float]]]) -> None:
    head = (
        f"{'rows':>9} {'variant':<8} {'wall s':>8} {'fit s':>7} {'peak MB':>8} {'auc':>7}"
        f" {'imports s':>10}"
    )
    print(head)
    print("-" * len(head))
    for n, bare, atoll in rows:
        for name, r in (("bare", bare), ("atoll", atoll)):
            cells = (
                f"{r['wall']:8.2f} {r['fit']:7.2f} {r['peak_mb']:8.0f} {r['auc']:7.4f}"
                f" {r['imports']:10.2f}"
            )
            print(f"{n:>9,} {name:<8} {cells}")
    print()
    for n, bare, atoll in rows:
        ratio = atoll["wall"] / bare["wall"]
        overhead = (atoll["wall"] - bare["wall"]) / bare["fit"]
        print(
            f"{n:>9,} rows: atoll/bare wall {ratio:.2f}x; atoll's extra time = "
            f"{overhead:+.0%} of the bare fit time (target at 500k: <= +25%); "
            f"peak memory {atoll['peak_mb'] / bare['peak_mb']:.2f}x"
        )


if __name__ == "__main__":
    main()
