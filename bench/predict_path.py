"""Benchmark: the prediction path (validate -> wrangle -> score) against bare LightGBM.

Builds the demo project (credit-risk, LightGBM) in a temporary directory, loads
the registered version the way the server does, and times each stage of
``Predictor.predict`` on columns decoded from JSON (what the HTTP codecs hand
over) for a few batch sizes. The baseline is the bare LightGBM booster scoring
the same, already encoded, matrix; ``total/bare`` is what atoll's checks and
wrangling cost on top of it. Each cell is the best of several rounds.

    python bench/predict_path.py
    python bench/predict_path.py --rows 1 64 --form records
    python bench/predict_path.py --threads 0    # 0 = the libraries' own thread count
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SIZES = [1, 64, 1_000, 100_000]


def best_of(call: Callable[[], object], budget_s: float = 1.0, rounds: int = 5) -> float:
    """Seconds per call: the best round of ``rounds``, each about ``budget_s / rounds`` long."""
    call()
    started = time.perf_counter()
    call()
    once = max(time.perf_counter() - started, 1e-7)
    per_round = max(1, int(budget_s / rounds / once))
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(per_round):
            call()
        best = min(best, (time.perf_counter() - started) / per_round)
    return best


def build_demo(root: Path) -> Any:
    """Train and register the demo model; return it loaded from the registry."""
    from atoll import api

    outcome = api.demo(root / "atoll-demo")
    version = outcome.trained.version
    settings = api.project_settings(outcome.project_dir)
    return api.load(f"{version.name}@{version.version}", settings=settings)


def request_columns(n_rows: int) -> dict[str, list[Any]]:
    """``n_rows`` new applications as JSON columns: ISO dates, numbers, ``None`` for missing."""
    from atoll.data.synthetic import TARGET, credit_risk

    frame = credit_risk(n_rows, seed=7).drop(columns=[TARGET])
    table = json.loads(frame.to_json(orient="split", date_format="iso", index=False))
    names: list[str] = table["columns"]
    return {name: [row[j] for row in table["data"]] for j, name in enumerate(names)}


def measure(predictor: Any, n_rows: int, form: str) -> dict[str, float]:
    columns: Any = request_columns(n_rows)
    if form == "records":
        names, lists = list(columns), list(columns.values())
        columns = [dict(zip(names, row, strict=True)) for row in zip(*lists, strict=True)]
    validated = predictor.schema.validate(columns, "predict")
    if not validated.report.ok:
        raise SystemExit(validated.report.summary())
    matrix = predictor.wrangler.matrix(validated.columns)
    booster = predictor.scorer.predict  # the bound LightGBM Booster.predict
    budget = 2.0 if n_rows >= 100_000 else 1.0
    return {
        "validate": best_of(lambda: predictor.schema.validate(columns, "predict"), budget),
        "matrix": best_of(lambda: predictor.wrangler.matrix(validated.columns), budget),
        "score": best_of(lambda: predictor.scorer.scores(matrix), budget),
        "total": best_of(lambda: predictor.predict(columns), budget),
        "bare": best_of(lambda: booster(matrix), budget),
    }


def report(rows: list[tuple[int, dict[str, float]]], form: str) -> None:
    head = (
        f"{'rows':>8} {'validate':>10} {'matrix':>10} {'score':>10} {'total':>10}"
        f" {'bare lgbm':>10} {'total/bare':>10} {'us/row':>8}"
    )
    print(head)
    print("-" * len(head))
    for n, t in rows:
        cells = " ".join(
            f"{_fmt(t[k]):>10}" for k in ("validate", "matrix", "score", "total", "bare")
        )
        per_row = t["total"] / n * 1e6
        print(f"{n:>8,} {cells} {t['total'] / t['bare']:>9.1f}x {per_row:>8.2f}")
    print(f"\ntimes per call (best of 5 rounds); total = Predictor.predict on JSON {form}")


def _fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=SIZES)
    parser.add_argument(
        "--form",
        choices=["columns", "records"],
        default="columns",
        help="columns: a list per column, as the HTTP codecs decode; records: a dict per row",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OpenMP/BLAS threads (LightGBM's included); 0 leaves the libraries' default",
    )
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    scratch = Path(tempfile.mkdtemp(prefix="atoll-bench-predict-"))
    try:
        print("building the demo project...", file=sys.stderr)
        predictor = build_demo(scratch)
        limits = threadpool_limits(args.threads) if args.threads > 0 else None
        try:
            rows = []
            for n in args.rows:
                rows.append((n, measure(predictor, n, args.form)))
                print(f"measured {n:,} rows", file=sys.stderr)
        finally:
            if limits is not None:
                limits.restore_original_limits()
        report(rows, args.form)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
