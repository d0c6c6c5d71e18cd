"""Benchmark: `atoll monitor report` drift over a logged window, against Evidently and scipy.

Sets up once (kept in --data, default bench/out/drift-data, and reused by later
runs; its time is printed, never counted):

- a seeded reference sample (--reference-rows, default 250,000) of 25 columns,
  20 numeric (two with a few percent missing) and 5 categorical, with a binary
  target; a model (LightGBM, 50 trees) is trained on it through
  `atoll.api.train`, so the version's reference profile is atoll's own, built
  from the training split (80% of the sample);
- the prediction log of a SQLite registry, filled through the store's bulk
  insert path (`to_row` + `insert_rows`, what the log's writer thread runs) with
  as many rows as the largest --rows, one per millisecond: their inputs are the
  same generator's with drift injected into 3 numeric columns and 1 categorical
  one (DRIFTED), their outputs the model's own answers (`Predictor.predict`,
  logged as the server logs them). The same inputs are written as Parquet for
  the other tools.

Then, for each N in --rows, every tool runs in its own process on the first N
logged rows (wall time from outside, process start to exit, imports included;
peak memory: the peak of the summed RSS of the process tree, every 50 ms):

- **atoll**: `atoll monitor report MODEL --since .. --until .. --json --no-save`:
  every check (drift, quality, performance, fairness, operational) over the
  window read from the log in chunks, against the stored reference profile;
- **scipy**: the plain in-memory baseline: the reference rows and the N
  current rows already in numpy arrays (read outside the clock), per numeric
  column `scipy.stats.ks_2samp` + `wasserstein_distance`, per categorical one
  the counts, `chi2_contingency` and `jensenshannon`; `inner s` is the clock
  around the statistics alone, the baseline of the targets;
- **evidently**: `Report([DataDriftPreset()]).run(current, reference)` on the
  same reference and current rows read from Parquet with pandas (up to
  --evidently-max-rows, default 1,000,000), from a separate venv at
  bench/.evidently-venv (created on first use, pinned to EVIDENTLY); skipped
  with the reason when it cannot be installed. `inner s` is the run alone.

Each row of the table names the columns the tool found drifted, so that the
three can be seen to agree. Targets: atoll at least 10x faster than Evidently
and within 2x of the scipy baseline's statistics, with a peak RSS under 500 MB
at 1M rows that does not grow from 1M to 5M rows.

    python bench/drift.py                           # 1M and 5M rows
    python bench/drift.py --rows 1000000            # 1M rows only
    python bench/drift.py --quick                   # 100k and 200k rows: a smoke run
    python bench/drift.py --no-evidently            # atoll and scipy only
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _harness as harness

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
EVIDENTLY_VENV = HERE / ".evidently-venv"
EVIDENTLY = ["evidently==0.7.23", "pandas>=2.2,<3", "pyarrow"]  # 0.7 does not import on pandas 3
MODEL, TARGET = "drift-bench", "label"
NUMERIC = [f"x{i:02d}" for i in range(20)]
WITH_MISSING = NUMERIC[:2]
CATEGORIES = {
    "region": ("north", "south", "east", "west", "centre", "islands"),
    "channel": ("web", "app", "branch", "phone"),
    "product": tuple(f"p{i:02d}" for i in range(12)),
    "segment": ("retail", "small", "corporate", "public", "private"),
    "plan": ("basic", "plus", "premium"),
}
SHIFTED = {"x03": 0.5, "x13": -0.4}  # mean shift in reference standard deviations
WIDENED = {"x08": 1.6}  # standard deviation multiplied
REVERSED = "channel"  # category shares reversed
DRIFTED = sorted([*SHIFTED, *WIDENED, REVERSED])
BLOCK_ROWS = 250_000
START = datetime(2026, 1, 1, tzinfo=UTC)  # the first logged row; one row per millisecond
STEP = timedelta(milliseconds=1)


# ------------------------------------------------------------------ data
def block(index: int, rows: int, seed: int, drifted: bool) -> Any:
    """Rows of one block as an Arrow table: the same arguments, the same rows."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng([seed, index])
    columns: dict[str, Any] = {}
    logit = np.full(rows, -1.0)
    for i, name in enumerate(NUMERIC):
        mean, scale = i - 10.0, 0.5 + i
        if drifted:
            mean += SHIFTED.get(name, 0.0) * scale
            scale *= WIDENED.get(name, 1.0)
        values = np.round(rng.normal(mean, scale, size=rows), 4)
        if i % 4 == 0:
            logit += (values - (i - 10.0)) / (0.5 + i) * 0.5
        if name in WITH_MISSING:
            values = np.where(rng.random(rows) < 0.03, np.nan, values)
        columns[name] = values
    for name, levels in CATEGORIES.items():
        weights = np.arange(len(levels), 0, -1, dtype=np.float64)
        if drifted and name == REVERSED:
            weights = weights[::-1]
        codes = rng.choice(len(levels), size=rows, p=weights / weights.sum())
        logit += (codes % 2) * 0.3
        columns[name] = np.asarray(levels, dtype=object)[codes]
    table = pa.table(columns)
    if drifted:
        return table
    score = 1 / (1 + np.exp(-(logit + rng.normal(0.0, 0.5, size=rows))))
    return table.append_column(TARGET, pa.array((rng.random(rows) < score).astype(np.int64)))


def spec_text(data: str) -> str:
    return harness.binary_spec(
        MODEL,
        "bench/drift.py: 20 numeric and 5 categorical columns.",
        data,
        {name: {"type": "float"} for name in NUMERIC},
        categories=CATEGORIES,
        imputed=WITH_MISSING,
        target=TARGET,
        params={"n_estimators": 50, "num_leaves": 15},
    )


@dataclass(frozen=True)
class Setup:
    project: Path
    ref: str
    reference: Path
    current: Path


def prepare(folder: Path, seed: int, reference_rows: int, rows: int) -> Setup:
    """The trained project and a log of at least ``rows`` rows (made or extended once)."""
    project = folder / "project"
    marker = project / "trained-ref.txt"
    if not marker.exists():
        shutil.rmtree(folder, ignore_errors=True)
        marker.write_text(train(project, seed, reference_rows))
    ref = marker.read_text().strip()
    current = folder / "current"
    fill_log(project, ref, current, seed, rows)
    return Setup(project, ref, project / "data" / "reference.parquet", current)


def train(project: Path, seed: int, rows: int) -> str:
    data = "data/reference.parquet"
    sample = block(10_000, rows, seed + 1, drifted=False)
    ref, _, seconds = harness.train(project, sample, data, spec_text(data))
    print(f"setup: trained {ref} on {rows:,} rows in {seconds:.0f} s")
    return ref


def fill_log(project: Path, ref: str, current: Path, seed: int, rows: int) -> int:
    """Log whole blocks with the model's answers until ``rows`` rows are logged; how many are."""
    import pyarrow.parquet as pq

    from atoll import api
    from atoll.store._logsql import insert_rows
    from atoll.store.db import transaction
    from atoll.store.predlog import count_log

    current.mkdir(exist_ok=True)
    settings = api.project_settings(project)
    predictor = api.load(ref, settings=settings)
    with api.open_registry(settings) as registry:
        logged = count_log(registry.engine, MODEL)
        started, first = time.perf_counter(), logged
        while logged < rows:
            index = logged // BLOCK_ROWS
            table = block(index, BLOCK_ROWS, seed, drifted=True)
            outputs = predictor.predict(table.to_pandas()).to_records()
            records = log_rows(table.to_pylist(), outputs, logged, int(ref.split("@")[1]))
            with transaction(registry.engine) as conn:
                insert_rows(conn, records, relaxed=True)
            pq.write_table(table, current / f"block-{index:05d}.parquet")
            logged += BLOCK_ROWS
            print(f"setup: logged {logged:,} rows", file=sys.stderr, flush=True)
    if logged > first:
        seconds = time.perf_counter() - started
        print(f"setup: logged {logged - first:,} rows in {seconds:.0f} s (not counted)")
    return logged


def log_rows(
    inputs: list[dict[str, Any]], outputs: list[dict[str, Any]], first: int, version: int
) -> list[dict[str, Any]]:
    """Insert-ready rows, through the store's own checks and JSON encoding (NaN is null)."""
    from atoll.store._logsql import LogRecord, to_row

    return [
        to_row(
            LogRecord(
                prediction_id=f"{first + offset:032x}",
                request_id=f"bench-{(first + offset) // 100}",
                created_at=START + (first + offset) * STEP,
                model=MODEL,
                version=version,
                role="primary",
                inputs=row,
                outputs=answer,
                latency_ms=2.0 + (first + offset) % 17 / 4,
                key_id=None,
            )
        )
        for offset, (row, answer) in enumerate(zip(inputs, outputs, strict=True))
    ]


def read_current(folder: Path, rows: int) -> Any:
    """The first ``rows`` current rows, as a pandas frame."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables, have = [], 0
    for path in sorted(folder.glob("block-*.parquet")):
        if have >= rows:
            break
        table = pq.read_table(path)
        tables.append(table.slice(0, rows - have))
        have += min(len(table), rows - have)
    return pa.concat_tables(tables).to_pandas()


# ------------------------------------------------------------------ children
def child_scipy(reference: Path, current: Path, rows: int) -> dict[str, Any]:
    """Plain scipy on in-memory arrays; only the statistics are timed."""
    import numpy as np
    import pandas as pd
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

    ref_frame, cur_frame = pd.read_parquet(reference), read_current(current, rows)
    numeric = {
        n: (ref_frame[n].dropna().to_numpy(float), cur_frame[n].dropna().to_numpy(float))
        for n in NUMERIC
    }
    categorical = {
        n: (ref_frame[n].to_numpy(object), cur_frame[n].to_numpy(object)) for n in CATEGORIES
    }
    del ref_frame, cur_frame
    started = time.perf_counter()
    drifted = []
    for name, (ref, cur) in numeric.items():
        ks = ks_2samp(ref, cur)
        distance = wasserstein_distance(ref, cur) / np.std(ref)
        if distance > 0.1 or ks.statistic > 0.1:
            drifted.append(name)
    for name, (ref, cur) in categorical.items():
        levels, codes = np.unique(np.concatenate([ref, cur]), return_inverse=True)
        table = np.vstack(
            [
                np.bincount(codes[: len(ref)], minlength=len(levels)),
                np.bincount(codes[len(ref) :], minlength=len(levels)),
            ]
        )
        chi2_contingency(table, correction=False)
        if jensenshannon(table[0] / table[0].sum(), table[1] / table[1].sum(), base=2) > 0.1:
            drifted.append(name)
    return {
        "rows": len(next(iter(categorical.values()))[1]),
        "inner_s": elapsed(started),
        "drifted": drifted,
    }


def child_evidently(reference: Path, current: Path, rows: int) -> dict[str, Any]:
    """Evidently's DataDriftPreset on frames read from Parquet; the run is timed."""
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref_frame = pd.read_parquet(reference).drop(columns=[TARGET])
    cur_frame = read_current(current, rows)
    started = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(cur_frame, ref_frame)
    inner = elapsed(started)
    drifted = []
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("column") and float(metric["value"]) >= config.get("threshold", 0.1):
            drifted.append(config["column"])
    return {"rows": len(cur_frame), "inner_s": inner, "drifted": sorted(drifted)}


def elapsed(started: float) -> float:
    return time.perf_counter() - started


# ------------------------------------------------------------------ measuring
@dataclass
class Cell(harness.Measured):
    """One measured run: ``Cell(rows, tool)``."""

    tool: str
    inner_s: float = float("nan")
    drifted: list[str] = field(default_factory=list)


def atoll_cell(rows: int, setup: Setup, scratch: Path) -> Cell:
    cell = Cell(rows, "atoll")
    until = (START + rows * STEP).isoformat()
    cmd = [str(BIN / "atoll"), "-C", str(setup.project), "monitor", "report", setup.ref]
    cmd += ["--since", START.isoformat(), "--until", until, "--json", "--no-save"]
    report = harness.measure_json(cell, cmd, scratch / "atoll.log")
    if cell.ok:
        drift = report["checks"]["drift"]
        cell.drifted = drift["drifted"]
        if report["rows"] != rows:
            cell.ok, cell.note = False, f"read {report['rows']:,} rows, not {rows:,}"
        else:
            prediction = (drift.get("prediction") or {}).get("status", "-")
            cell.note = f"all checks; prediction drift {prediction}"
    return done(cell)


def child_cell(tool: str, python: Path, rows: int, setup: Setup, scratch: Path) -> Cell:
    cell = Cell(rows, tool)
    cmd = harness.child_cmd(
        python, __file__, tool, reference=setup.reference, current=setup.current, rows=rows
    )
    out = harness.measure_json(cell, cmd, scratch / f"{tool}.log")
    if cell.ok:
        cell.inner_s, cell.drifted = out["inner_s"], out["drifted"]
        cell.note = f"statistics {cell.inner_s:.1f} s of the wall"
    return done(cell)


def done(cell: Cell) -> Cell:
    print(f"  {cell.rows:>11,} {cell.tool:<10} {cell.wall_s:7.1f} s  {cell.state}", file=sys.stderr)
    return cell


# ------------------------------------------------------------------ report
def report(cells: list[Cell], evidently_note: str) -> None:
    head = (
        f"{'rows':>11} {'tool':<10} {'wall s':>8} {'inner s':>8} {'tree MB':>8} {'tree PSS':>8}"
        f" {'cpu s':>7}  {'drifted':<30} note"
    )
    notes = [f"injected drift: {','.join(DRIFTED)}"]
    if evidently_note:
        notes.append(f"evidently: skipped: {evidently_note}")
    harness.print_report(head, map(table_line, cells), notes, verdicts(cells))


def table_line(c: Cell) -> str:
    drifted = ",".join(c.drifted) if c.ok else "-"
    inner = "-" if c.inner_s != c.inner_s else f"{c.inner_s:.1f}"  # NaN: not measured
    return (
        f"{c.rows:>11,} {c.tool:<10} {c.wall_s:>8.1f} {inner:>8} {c.tree_mb:>8.0f}"
        f" {c.pss_mb:>8.0f} {c.cpu_s:>7.1f}  {drifted:<30} {c.shown_note}"
    )


def find(cells: list[Cell], rows: int, tool: str) -> Cell | None:
    return next((c for c in cells if (c.rows, c.tool) == (rows, tool) and c.ok), None)


def verdicts(cells: list[Cell]) -> Iterator[str]:
    sizes = sorted({c.rows for c in cells})
    for n in sizes:
        atoll = find(cells, n, "atoll")
        if atoll is None:
            yield f"{n:>11,} rows: atoll failed: no ratios"
            continue
        yield f"{n:>11,} rows (atoll {atoll.wall_s:.1f} s, {atoll.tree_mb:.0f} MB):"
        if evidently := find(cells, n, "evidently"):
            faster = evidently.wall_s / atoll.wall_s
            yield target("vs Evidently (wall)", f"{faster:.1f}x faster", ">= 10x", faster >= 10)
        if scipy := find(cells, n, "scipy"):
            slower = atoll.wall_s / scipy.inner_s
            yield target("vs scipy statistics", f"{slower:.2f}x", "<= 2x", slower <= 2)
            whole = atoll.wall_s / scipy.wall_s
            yield f"    (vs the scipy process wall, loading included: {whole:.2f}x)"
        if n == 1_000_000:
            yield target(
                "peak RSS (tree)", f"{atoll.tree_mb:.0f} MB", "< 500 MB", atoll.tree_mb < 500
            )
    first, last = find(cells, sizes[0], "atoll"), find(cells, sizes[-1], "atoll")
    if len(sizes) > 1 and first and last:
        ratio = last.tree_mb / first.tree_mb
        yield target(
            f"peak RSS {sizes[0]:,} -> {sizes[-1]:,}", f"{ratio:.2f}x", "<= 1.10x", ratio <= 1.1
        )


def target(label: str, value: str, goal: str, ok: bool) -> str:
    return harness.target(label, value, goal, ok, widths=(30, 14, 9))


# ------------------------------------------------------------------ entry point
def run_child(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    paths = (Path(args["reference"]), Path(args["current"]), int(args["rows"]))
    return child_scipy(*paths) if kind == "scipy" else child_evidently(*paths)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows",
        type=lambda text: [int(n) for n in text.split(",")],
        help="window sizes, comma-separated (default 1000000,5000000)",
    )
    parser.add_argument("--quick", action="store_true", help="100k and 200k rows: a smoke run")
    parser.add_argument("--reference-rows", type=int, help="the reference sample (default 250,000)")
    parser.add_argument("--evidently-max-rows", type=int, default=1_000_000)
    parser.add_argument("--no-evidently", action="store_true", help="atoll and scipy only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=HERE / "out" / "drift-data")
    args = parser.parse_args()
    if args.rows is None:
        args.rows = [100_000, 200_000] if args.quick else [1_000_000, 5_000_000]
    if args.reference_rows is None:
        args.reference_rows = 50_000 if args.quick else 250_000
    return args


def main() -> int:
    args = parse()
    harness.print_load_at_start()
    folder = args.data / f"seed{args.seed}-reference{args.reference_rows}"
    setup = prepare(folder, args.seed, args.reference_rows, max(args.rows))
    python, evidently_note = None, "not asked for (--no-evidently)"
    if not args.no_evidently:
        python, evidently_note = harness.separate_venv(
            EVIDENTLY_VENV, "evidently", EVIDENTLY, "from evidently.presets import DataDriftPreset"
        )
    cells: list[Cell] = []
    with tempfile.TemporaryDirectory(prefix="atoll-bench-drift-") as scratch:
        for rows in args.rows:
            cells.append(atoll_cell(rows, setup, Path(scratch)))
            cells.append(child_cell("scipy", Path(sys.executable), rows, setup, Path(scratch)))
            if python is not None and rows <= args.evidently_max_rows:
                cells.append(child_cell("evidently", python, rows, setup, Path(scratch)))
    report(cells, evidently_note)
    return harness.finish(cells)


if __name__ == "__main__":
    sys.exit(harness.main_or_child(main, run_child))
