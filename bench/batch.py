"""Benchmark: `atoll predict` (batch scoring) against the compute limit and a pandas baseline.

Generates N rows (20 numeric and 3 categorical columns plus a `row_id`, seeded,
in blocks of 250,000 rows) as Parquet (row groups of 250,000 rows, or N/8 under
2M rows, so that a quick run has several too) and as CSV, trains
a demo-style model (impute, one-hot, LightGBM 200 trees) through atoll's API on
a 100,000-row sample, then measures in one run, for each N:

- **compute**: the in-memory limit. The input is read in batches of 100,000
  rows and each batch is validated and wrangled *outside* the clock; only the
  loaded Predictor's scorer (the LightGBM booster, its default threads: all
  cores) on the pre-wrangled matrix is timed. Its note also gives the rate of
  `Predictor.predict`'s steps on the same batches (validate + wrangle + score).
- **pandas**: the naive baseline: `pd.read_parquet` / `pd.read_csv` (default
  engine) of the whole file, `Predictor.predict` on the whole frame, the ids,
  predictions and probabilities written with `to_parquet` / `to_csv`.
- **atoll**: `atoll predict --model REF --input ... --output ... --workers N`
  (a subprocess of the CLI; `--chunk-rows` 100,000, its default, or 25,000 with
  `--quick`) with 1 and 2 local workers on Parquet and CSV, and
  with `--engine dask --workers 2` (a LocalCluster of 2 worker processes) on Parquet.
- **atoll in a 1 GiB cgroup**: the same 2-worker Parquet run inside a memory
  cgroup limited to 1 GiB with no swap, as a container would run it: it either
  fits or the kernel kills it. Reported: completed or killed, and the most
  anonymous + mapped-file memory the cgroup held (page cache, which the kernel
  reclaims before it kills anything, is left out). Needs root (or a delegated
  cgroup); skipped with the reason otherwise (see bench/_cgroup.py).
- **mlflow** (only with `--mlflow`): `mlflow models predict` on the same CSV,
  with the same wrangling and LightGBM model as a scikit-learn pipeline, from a
  separate venv at bench/.mlflow-venv (created on first use).

Every variant runs as its own process; its wall time is measured from outside
(process start to exit, so imports and the model load count for pandas and
atoll alike) and its peak memory is the largest sum of the RSS of its whole
process tree, sampled every 50 ms (`tree PSS`: of the PSS, which counts shared
pages once, sampled every 0.5 s: reading it costs the kernel a walk of every
page; `max proc` is the largest single process).
The compute limit's seconds and rows/s come from its own in-process clock
(the scorer alone). The memory target is judged by the cgroup run: a process
tree's summed RSS counts the pages its processes share (the libraries the fork
server loaded once) once per process, which no memory limit does.
The pandas baseline is skipped at sizes whose whole frame would not fit in the
memory available (it needs about 1.4 KB a row).

CSV files are only written up to --csv-max-rows (default 5,000,000): the memory
target is on Parquet, and 20M rows of CSV take ~3 GB of disk. Generated files
are kept in --data (default bench/out/batch-data) and reused by later runs.

    python bench/batch.py                            # 5M rows
    python bench/batch.py --rows 5000000 20000000    # memory must not grow with rows
    python bench/batch.py --quick                    # 100k and 200k rows, 25k-row chunks
    python bench/batch.py --quick --mlflow           # also mlflow models predict
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _cgroup as cgroup
import _harness as harness

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
MLFLOW_VENV = HERE / ".mlflow-venv"
MLFLOW = ["mlflow", "scikit-learn", "lightgbm", "pandas", "pyarrow"]
MODEL = "batch-bench"
ID, TARGET = "row_id", "label"
NUMERIC = [f"x{i:02d}" for i in range(20)]
COUNTS = NUMERIC[16:]  # four integer-valued columns (counts)
WITH_MISSING = NUMERIC[:3]  # a few percent missing, imputed by the model's wrangling
CATEGORIES = {
    "region": ("north", "south", "east", "west", "centre", "islands"),
    "channel": ("web", "app", "branch", "phone"),
    "product": tuple(f"p{i:02d}" for i in range(12)),
}
BLOCK_ROWS = 250_000
COMPUTE_BATCH = 100_000
LGBM_PARAMS = {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 31}
GiB = 2**30
CGROUP_LIMIT = GiB
PANDAS_BYTES_PER_ROW = 1_400
"""What the pandas baseline held per row at 5M rows (7 GB): sizes it cannot run are skipped."""


# ------------------------------------------------------------------ data
def block(index: int, rows: int, seed: int, with_target: bool = False) -> Any:
    """Rows from ``index * BLOCK_ROWS`` on, as an Arrow table: the same arguments, the same rows."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng([seed, index])
    start = index * BLOCK_ROWS
    columns: dict[str, Any] = {ID: np.arange(start, start + rows, dtype=np.int64)}
    scales = np.linspace(0.5, 20.0, len(NUMERIC))
    logit = np.full(rows, -1.5)
    for i, name in enumerate(NUMERIC):
        if name in COUNTS:
            values = rng.poisson(1.0 + i % 5, size=rows).astype(np.float64)
        else:
            values = np.round(rng.normal(i - 10.0, scales[i], size=rows), 4)
        if i % 3 == 0:
            logit += (values - values.mean()) / (values.std() + 1e-9) * (0.6 / (1 + i / 4))
        columns[name] = values.astype(np.int64) if name in COUNTS else values
    for offset, (name, levels) in enumerate(CATEGORIES.items()):
        weights = np.arange(len(levels), 0, -1, dtype=np.float64)
        codes = rng.choice(len(levels), size=rows, p=weights / weights.sum())
        logit += (codes % 3 - 1) * 0.3 * (offset + 1)
        columns[name] = pa.DictionaryArray.from_arrays(
            pa.array(codes, pa.int32()), pa.array(levels)
        ).cast(pa.string())
    for name in WITH_MISSING:
        columns[name] = np.where(rng.random(rows) < 0.03, np.nan, columns[name])
    if with_target:
        noise = rng.normal(0.0, 0.5, size=rows)
        columns[TARGET] = (rng.random(rows) < 1 / (1 + np.exp(-(logit + noise)))).astype(np.int64)
    return pa.table(columns)


def write_data(rows: int, folder: Path, seed: int, csv: bool) -> dict[str, Path]:
    """The input files for ``rows`` rows (reused when a finished set is there already)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    group_rows = min(BLOCK_ROWS, max(10_000, rows // 8))
    files = {"parquet": folder / f"rows_{rows}_rg_{group_rows}_seed_{seed}.parquet"}
    if csv:
        files["csv"] = files["parquet"].with_suffix(".csv")
    done = [path.with_name(path.name + ".done") for path in files.values()]
    if all(path.exists() for path in done):
        return files
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    schema = block(0, 1, seed).schema
    with contextlib.ExitStack() as stack:
        parquet = stack.enter_context(pq.ParquetWriter(files["parquet"], schema))
        text = stack.enter_context(pacsv.CSVWriter(files["csv"], schema)) if csv else None
        for index in range((rows + BLOCK_ROWS - 1) // BLOCK_ROWS):
            table = block(index, min(BLOCK_ROWS, rows - index * BLOCK_ROWS), seed)
            parquet.write_table(table, row_group_size=group_rows)
            if text is not None:
                text.write_table(table)
    for path in done:
        path.touch()
    sizes = ", ".join(f"{p.name} {p.stat().st_size / 2**20:,.0f} MB" for p in files.values())
    print(f"generated {rows:,} rows in {time.perf_counter() - started:.0f} s: {sizes}", flush=True)
    return files


# ------------------------------------------------------------------ model
def spec_text(data: str) -> str:
    """A demo-style spec: median imputation, one-hot categories, LightGBM."""
    columns: dict[str, Any] = {ID: {"type": "int", "role": "id", "nullable": False}}
    for name in NUMERIC:
        columns[name] = {"type": "int" if name in COUNTS else "float"}
    return harness.binary_spec(
        MODEL,
        "bench/batch.py: 20 numeric and 3 categorical columns.",
        data,
        columns,
        categories=CATEGORIES,
        imputed=WITH_MISSING,
        target=TARGET,
        params=LGBM_PARAMS,
    )


def train(project: Path, seed: int, rows: int) -> str:
    """Train and register the model on a sample; its ``name@version`` reference."""
    sample = block(10_000, rows, seed + 1, with_target=True)  # rows no input file holds
    data = "data/sample.parquet"
    ref, outcome, seconds = harness.train(project, sample, data, spec_text(data))
    auc = outcome.result.evaluation["metrics"]["roc_auc"]
    print(f"trained {ref} on {rows:,} rows in {seconds:.0f} s, AUC {auc:.3f}")
    return ref


# ------------------------------------------------------------------ children
def child_compute(project: Path, ref: str, data: Path) -> dict[str, Any]:
    """Time the scorer alone, and Predictor.predict, on in-memory batches of 100k rows."""
    import pyarrow.parquet as pq

    from atoll import api

    predictor = api.load(ref, settings=api.project_settings(project))
    clocks = {"validate": 0.0, "matrix": 0.0, "score": 0.0}
    rows = 0
    for batch in pq.ParquetFile(data).iter_batches(batch_size=COMPUTE_BATCH):
        frame = batch.to_pandas()  # reading and decoding are outside every clock
        started = time.perf_counter()
        validated = predictor.schema.validate(frame, "predict")
        checked = time.perf_counter()
        matrix = predictor.wrangler.matrix(validated.columns)
        wrangled = time.perf_counter()
        predictor.scorer.scores(matrix)
        clocks["validate"] += checked - started
        clocks["matrix"] += wrangled - checked
        clocks["score"] += time.perf_counter() - wrangled
        rows += len(frame)
    return {"rows": rows, **clocks}


def child_pandas(project: Path, ref: str, data: Path, output: Path) -> dict[str, Any]:
    """Read the whole file, predict it in one call, write it: the naive way."""
    import pandas as pd

    from atoll import api

    predictor = api.load(ref, settings=api.project_settings(project))
    started = time.perf_counter()
    frame = pd.read_parquet(data) if data.suffix == ".parquet" else pd.read_csv(data)
    prediction = predictor.predict(frame)
    out = pd.DataFrame({ID: frame[ID].to_numpy(), "prediction": prediction.predictions})
    assert prediction.probabilities is not None
    for index, label in enumerate(prediction.classes):
        out[f"probability_{label}"] = prediction.probabilities[:, index]
    if output.suffix == ".parquet":
        out.to_parquet(output, index=False)
    else:
        out.to_csv(output, index=False)
    return {"rows": len(frame), "inner_s": time.perf_counter() - started}


def child_mlflow_model(sample: Path, folder: Path) -> dict[str, Any]:
    """In the MLflow venv: the same wrangling and LightGBM model, saved as an MLflow model."""
    import lightgbm
    import mlflow.sklearn
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = pd.read_parquet(sample)
    wrangle = ColumnTransformer(
        [
            ("impute", SimpleImputer(strategy="median"), WITH_MISSING),
            ("onehot", OneHotEncoder(handle_unknown="ignore"), list(CATEGORIES)),
            ("rest", "passthrough", [n for n in NUMERIC if n not in WITH_MISSING]),
        ]
    )
    model = lightgbm.LGBMClassifier(**LGBM_PARAMS, verbosity=-1)
    pipeline = Pipeline([("wrangle", wrangle), ("model", model)])
    pipeline.fit(frame.drop(columns=[TARGET]), frame[TARGET])
    options: dict[str, Any] = {"pyfunc_predict_fn": "predict_proba"}
    if "skops_trusted_types" in inspect.signature(mlflow.sklearn.save_model).parameters:
        # MLflow 3 saves with skops and wants the types it may load named up front.
        options["skops_trusted_types"] = [
            "collections.OrderedDict",
            "lightgbm.basic.Booster",
            "lightgbm.sklearn.LGBMClassifier",
            "numpy.dtype",
        ]
    mlflow.sklearn.save_model(pipeline, str(folder), **options)
    return {"saved": str(folder)}


# ------------------------------------------------------------------ measuring
@dataclass
class Cell(harness.Measured):
    """One measured run: ``Cell(rows, variant, fmt, workers)``."""

    variant: str
    fmt: str
    workers: int
    cgroup_mb: float = harness.NAN
    """Peak anonymous + mapped memory of the cgroup run (what a container's limit charges)."""


def child_cmd(kind: str, **args: Any) -> list[str]:
    return harness.child_cmd(sys.executable, __file__, kind, **args)


def output_rows(path: Path) -> int:
    """Rows in a written Parquet or CSV output (header excluded)."""
    import pyarrow.parquet as pq

    if path.suffix == ".parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    lines = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            lines += chunk.count(b"\n")
    return lines - 1


def checked(cell: Cell, output: Path) -> None:
    """Mark the cell failed unless ``output`` has one row per input row; then remove its folder."""
    if cell.ok:
        found = output_rows(output) if output.exists() else -1
        if found != cell.rows:
            cell.ok, cell.note = False, f"output has {found:,} rows, not {cell.rows:,}"
    shutil.rmtree(output.parent)  # the output, its work dir and any quarantine file


# ------------------------------------------------------------------ the run
@dataclass(frozen=True)
class Setup:
    project: Path
    ref: str
    scratch: Path
    mlflow_model: Path | None
    chunk_rows: int


def run_size(rows: int, files: dict[str, Path], setup: Setup) -> list[Cell]:
    """Every variant on ``rows`` rows, one after the other."""
    cells = [compute_cell(rows, files["parquet"], setup)]
    for fmt, data in files.items():
        cells.append(pandas_cell(rows, fmt, data, setup))
    for fmt, data in files.items():
        for workers in (1, 2):
            cells.append(atoll_cell(rows, fmt, data, workers, "local", setup))
    cells.append(cgroup_cell(rows, files["parquet"], setup))
    cells.append(atoll_cell(rows, "parquet", files["parquet"], 2, "dask", setup))
    if setup.mlflow_model is not None and "csv" in files:
        cells.append(mlflow_cell(rows, files["csv"], setup.mlflow_model, setup))
    return cells


def compute_cell(rows: int, data: Path, setup: Setup) -> Cell:
    cell = Cell(rows, "compute", "memory", 0)
    cmd = child_cmd("compute", project=setup.project, ref=setup.ref, data=data)
    out = harness.measure_json(cell, cmd, setup.scratch / "compute.log")
    if cell.ok:
        process_s, cell.wall_s = cell.wall_s, out["score"]
        cell.rows_per_s = rows / out["score"]
        pipeline = out["validate"] + out["matrix"] + out["score"]
        cell.note = (
            f"scorer only (process {process_s:.1f} s); Predictor.predict in memory"
            f" {rows / pipeline:,.0f} rows/s (validate {out['validate']:.1f} s,"
            f" wrangle {out['matrix']:.1f} s)"
        )
    print_progress(cell)
    return cell


def pandas_cell(rows: int, fmt: str, data: Path, setup: Setup) -> Cell:
    import psutil

    cell = Cell(rows, "pandas", fmt, 1)
    needs, free = rows * PANDAS_BYTES_PER_ROW, psutil.virtual_memory().available
    if needs > 0.8 * free:
        cell.skip(f"the whole frame needs ~{needs / GiB:.0f} GiB, {free / GiB:.0f} GiB free")
        print_progress(cell)
        return cell
    output = out_dir(setup) / f"pandas.{fmt}"
    cmd = child_cmd("pandas", project=setup.project, ref=setup.ref, data=data, output=output)
    out = harness.measure_json(cell, cmd, setup.scratch / "pandas.log")
    if cell.ok:
        cell.note = f"read+predict+write {out['inner_s']:.1f} s of the wall"
    checked(cell, output)
    print_progress(cell)
    return cell


def atoll_cmd(data: Path, output: Path, workers: int, engine: str, setup: Setup) -> list[str]:
    cmd = [str(BIN / "atoll"), "-C", str(setup.project), "predict", "--model", setup.ref]
    cmd += ["--input", str(data), "--output", str(output), "--workers", str(workers)]
    return [*cmd, "--engine", engine, "--chunk-rows", str(setup.chunk_rows), "--json"]


def atoll_cell(rows: int, fmt: str, data: Path, workers: int, engine: str, setup: Setup) -> Cell:
    cell = Cell(rows, f"atoll {engine}", fmt, workers)
    output = out_dir(setup) / f"atoll.{fmt}"
    log = setup.scratch / f"atoll-{engine}-{fmt}-{workers}.log"
    summary = harness.measure_json(cell, atoll_cmd(data, output, workers, engine, setup), log)
    if cell.ok:
        cell.note = (
            f"job {summary['seconds']:.1f} s inside ({summary['rows_per_s']:,.0f} rows/s),"
            f" {summary['chunks']} chunks, at most {summary['peak_in_flight']} in flight"
        )
        if summary["rows_quarantined"]:
            cell.ok, cell.note = False, f"{summary['rows_quarantined']:,} rows quarantined"
    checked(cell, output)
    print_progress(cell)
    return cell


def cgroup_cell(rows: int, data: Path, setup: Setup) -> Cell:
    """The 2-worker Parquet run inside a 1 GiB memory cgroup without swap: fits, or is killed."""
    cell = Cell(rows, "atoll cgroup", "parquet", 2)
    why_not = cgroup.available()
    if why_not is not None:
        cell.skip(why_not)
        print_progress(cell)
        return cell
    output = out_dir(setup) / "atoll-cgroup.parquet"
    cmd = atoll_cmd(data, output, 2, "local", setup)
    try:
        ran = cgroup.run(cmd, CGROUP_LIMIT, setup.scratch / "atoll-cgroup.log")
    except OSError as error:  # a hierarchy that looked writable refused the new cgroup
        cell.skip(f"cannot make a memory cgroup: {error}")
        print_progress(cell)
        return cell
    cell.wall_s, cell.cgroup_mb = ran.wall_s, ran.peak_bytes / 2**20
    swap = "no swap" if ran.swap_off else "swap not limited"
    limit = f"{CGROUP_LIMIT / GiB:g} GiB limit, {swap}"
    if ran.returncode == 0:
        cell.rows_per_s = rows / ran.wall_s
        cell.note = f"fits: {limit}; peak anon+mapped {cell.cgroup_mb:,.0f} MB"
        checked(cell, output)
    else:
        cell.ok = False
        cell.note = f"exit {ran.returncode} ({ran.oom_kills} killed by the kernel): {limit}"
    print_progress(cell)
    return cell


def mlflow_cell(rows: int, data: Path, model: Path, setup: Setup) -> Cell:
    cell = Cell(rows, "mlflow", "csv", 1)
    output = out_dir(setup) / "mlflow.csv"
    mlflow = MLFLOW_VENV / "bin" / "mlflow"
    cmd = [str(mlflow), "models", "predict", "-m", str(model), "-i", str(data)]
    cmd += ["-o", str(output), "-t", "csv", "--env-manager", "local"]
    harness.measure(cell, cmd, setup.scratch / "mlflow.log")
    if cell.ok and output.exists():  # MLflow writes JSON or CSV depending on its version
        cell.note = f"output {output.stat().st_size / 2**20:,.0f} MB"
    shutil.rmtree(output.parent, ignore_errors=True)
    print_progress(cell)
    return cell


def out_dir(setup: Setup) -> Path:
    """A fresh folder for one run's output (removed after it is checked)."""
    folder = setup.scratch / "out"
    folder.mkdir(exist_ok=True)
    return folder


def print_progress(cell: Cell) -> None:
    print(
        f"  {cell.rows:>11,} {cell.variant:<12} {cell.fmt:<8} w{cell.workers or '-'}"
        f" {cell.wall_s:7.1f} s  {cell.state}",
        file=sys.stderr,
        flush=True,
    )


# ------------------------------------------------------------------ MLflow venv
def prepare_mlflow(project: Path, scratch: Path) -> tuple[Path | None, str]:
    """The saved MLflow model, or None and why MLflow is skipped."""
    python, reason = harness.separate_venv(MLFLOW_VENV, "mlflow", MLFLOW, "import mlflow.sklearn")
    if python is None:
        return None, reason
    folder = scratch / "mlflow-model"
    sample = project / "data" / "sample.parquet"
    done = subprocess.run(
        harness.child_cmd(python, __file__, "mlflow-model", sample=sample, folder=folder),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        reason = harness.last_line(done.stderr, "no output")
        return None, f"could not build the MLflow model: {reason}"
    return folder, ""


# ------------------------------------------------------------------ report
def report(cells: list[Cell], mlflow_note: str) -> None:
    head = (
        f"{'rows':>11} {'variant':<12} {'format':<8} {'workers':>7} {'wall s':>8}"
        f" {'rows/s':>11} {'tree MB':>8} {'tree PSS':>8} {'max proc':>8} {'cpu s':>7}  note"
    )
    skipped = [f"mlflow: skipped: {mlflow_note}"] if mlflow_note else []
    harness.print_report(head, map(table_line, cells), skipped, verdicts(cells))


def table_line(c: Cell) -> str:
    workers = str(c.workers or "-")
    return (
        f"{c.rows:>11,} {c.variant:<12} {c.fmt:<8} {workers:>7} {c.wall_s:>8.1f}"
        f" {c.rows_per_s:>11,.0f} {c.tree_mb:>8.0f} {c.pss_mb:>8.0f} {c.proc_mb:>8.0f}"
        f" {c.cpu_s:>7.1f}  {c.shown_note}"
    )


def find(cells: list[Cell], rows: int, variant: str, fmt: str, workers: int) -> Cell | None:
    for c in cells:
        if (c.rows, c.variant, c.fmt, c.workers) == (rows, variant, fmt, workers) and c.ok:
            return c
    return None


def verdicts(cells: list[Cell]) -> Iterator[str]:
    """The issue's targets (all on Parquet), per size, then memory across sizes."""
    sizes = sorted({c.rows for c in cells})
    for n in sizes:
        local = find(cells, n, "atoll local", "parquet", 2)
        if local is None:
            yield f"{n:>11,} rows: atoll with 2 local workers failed: no ratios"
            continue
        yield f"{n:>11,} rows, Parquet, 2 local workers ({local.rows_per_s:,.0f} rows/s):"
        if compute := find(cells, n, "compute", "memory", 0):
            share = local.rows_per_s / compute.rows_per_s
            yield target("vs compute limit", f"{share:.0%}", ">= 60%", share >= 0.6)
        if pandas := find(cells, n, "pandas", "parquet", 1):
            speedup = local.rows_per_s / pandas.rows_per_s
            yield target("vs pandas baseline", f"{speedup:.2f}x", ">= 2x", speedup >= 2)
        yield from memory_verdict(cells, n, local)
        if dask := find(cells, n, "atoll dask", "parquet", 2):
            slower = dask.wall_s / local.wall_s
            yield target("dask / local time", f"{slower:.2f}x", "<= 1.5x", slower <= 1.5)
        mlflow = find(cells, n, "mlflow", "csv", 1)
        csv_local = find(cells, n, "atoll local", "csv", 2)
        if mlflow and csv_local:
            faster = mlflow.wall_s / csv_local.wall_s
            yield f"    CSV: atoll, 2 workers, is {faster:.2f}x as fast as mlflow models predict"
    yield from growth(cells, sizes)


def memory_verdict(cells: list[Cell], rows: int, local: Cell) -> Iterator[str]:
    """Judged in the 1 GiB cgroup; the tree's summed RSS and PSS are shown beside it."""
    contained = next((c for c in cells if (c.rows, c.variant) == (rows, "atoll cgroup")), None)
    if contained is None or contained.skipped:
        yield f"    memory in a 1 GiB cgroup: not measured ({contained.note if contained else '-'})"
    else:
        value = f"{contained.cgroup_mb:,.0f} MB" if contained.ok else "killed"
        yield target("peak in 1 GiB cgroup", value, "fits", contained.ok)
    gib, pss = local.tree_mb * 2**20 / GiB, local.pss_mb * 2**20 / GiB
    yield (
        f"    process tree: summed RSS {gib:.2f} GiB (shared pages once per process),"
        f" PSS {pss:.2f} GiB (once), largest process {local.proc_mb:,.0f} MB"
    )


def target(label: str, value: str, goal: str, ok: bool) -> str:
    return harness.target(label, value, goal, ok, widths=(22, 9, 8))


def growth(cells: list[Cell], sizes: list[int]) -> Iterator[str]:
    if len(sizes) < 2:
        return
    for variant, workers in (("atoll local", 1), ("atoll local", 2), ("atoll dask", 2)):
        first = find(cells, sizes[0], variant, "parquet", workers)
        last = find(cells, sizes[-1], variant, "parquet", workers)
        if first and last:
            yield grown(f"peak RSS {variant} w{workers}", sizes, first.tree_mb, last.tree_mb)
    first = find(cells, sizes[0], "atoll cgroup", "parquet", 2)
    last = find(cells, sizes[-1], "atoll cgroup", "parquet", 2)
    if first and last:
        yield grown("peak in the 1 GiB cgroup", sizes, first.cgroup_mb, last.cgroup_mb)


def grown(what: str, sizes: list[int], first_mb: float, last_mb: float) -> str:
    ratio = last_mb / first_mb
    return (
        f"{what}, {sizes[0]:,} -> {sizes[-1]:,} rows: {first_mb:,.0f} -> {last_mb:,.0f} MB"
        f" ({ratio:.2f}x; target: not growing, <= 1.10x) {harness.mark(ratio <= 1.1)}"
    )


# ------------------------------------------------------------------ entry point
def run_child(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    paths = {k: Path(v) for k, v in args.items() if k != "ref"}
    if kind == "compute":
        return child_compute(paths["project"], args["ref"], paths["data"])
    if kind == "pandas":
        return child_pandas(paths["project"], args["ref"], paths["data"], paths["output"])
    return child_mlflow_model(paths["sample"], paths["folder"])


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", help="input sizes (default 5,000,000)")
    parser.add_argument(
        "--quick", action="store_true", help="100k and 200k rows, 25k-row chunks: a smoke run"
    )
    parser.add_argument("--train-rows", type=int, help="training sample (default 100,000)")
    parser.add_argument("--chunk-rows", type=int, help="atoll's chunk size (default 100,000)")
    parser.add_argument("--csv-max-rows", type=int, default=5_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=HERE / "out" / "batch-data")
    parser.add_argument("--mlflow", action="store_true", help="also `mlflow models predict`")
    parser.add_argument("--keep", action="store_true", help="keep the scratch dir (logs)")
    args = parser.parse_args()
    if args.rows is None:
        args.rows = [100_000, 200_000] if args.quick else [5_000_000]
    if args.chunk_rows is None:
        args.chunk_rows = 25_000 if args.quick else 100_000
    if args.train_rows is None:
        args.train_rows = 20_000 if args.quick else 100_000
    return args


def main() -> int:
    args = parse()
    if not shutil.which("atoll", path=str(BIN)):
        print(f"error: no atoll command beside {sys.executable}", file=sys.stderr)
        return 1
    harness.print_load_at_start()
    scratch = Path(tempfile.mkdtemp(prefix="atoll-bench-batch-"))
    try:
        cells, mlflow_note = run(args, scratch)
    finally:
        if args.keep:
            print(f"scratch kept: {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    report(cells, mlflow_note)
    return harness.finish(cells)


def run(args: argparse.Namespace, scratch: Path) -> tuple[list[Cell], str]:
    project = scratch / "project"
    ref = train(project, args.seed, args.train_rows)
    mlflow_model, mlflow_note = None, "not asked for (use --mlflow)"
    if args.mlflow:
        mlflow_model, mlflow_note = prepare_mlflow(project, scratch)
    setup = Setup(project, ref, scratch, mlflow_model, args.chunk_rows)
    cells: list[Cell] = []
    for rows in args.rows:
        files = write_data(rows, args.data, args.seed, csv=rows <= args.csv_max_rows)
        if "csv" not in files:
            print(f"  {rows:,} rows: no CSV (above --csv-max-rows)", file=sys.stderr)
        cells += run_size(rows, files, setup)
    return cells, mlflow_note


if __name__ == "__main__":
    sys.exit(harness.main_or_child(main, run_child))
