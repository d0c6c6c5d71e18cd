"""Fixtures of the batch tests: the shared trained project, an input of a few thousand rows
(as CSV and as Parquet with small row groups), and what ``Predictor`` says on the whole of it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from atoll import api
from atoll.batch.job import BatchSummary
from atoll.batch.sink import PartSink
from atoll.data.sources import read_frame
from atoll.data.synthetic import TARGET, credit_risk
from tests.conftest import TrainedProject

REF = "credit-risk@production"
ROWS = 3000
ROW_GROUP = 250
PREDICTED = ["prediction", "probability_0", "probability_1"]


@dataclass(frozen=True)
class Inputs:
    """One input in both formats, and ``Predictor.predict`` on the whole frame."""

    frame: pd.DataFrame
    csv: Path
    parquet: Path
    expected: pd.DataFrame


@pytest.fixture(scope="session")
def inputs(trained_project: TrainedProject, tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    root = tmp_path_factory.mktemp("batch-inputs")
    frame = credit_risk(ROWS, seed=11).drop(columns=[TARGET])
    csv, parquet = root / "rows.csv", root / "rows.parquet"
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet, row_group_size=ROW_GROUP, index=False)
    predictor = api.load(REF, settings=trained_project.settings)
    prediction = predictor.predict(read_frame(str(csv)))
    assert prediction.probabilities is not None
    expected = pd.DataFrame(
        {
            "application_id": frame["application_id"].astype(str),
            "row": range(len(frame)),
            "prediction": prediction.predictions,
            "probability_0": prediction.probabilities[:, 0],
            "probability_1": prediction.probabilities[:, 1],
            "model_version": trained_project.outcome.version.version,
        }
    )
    return Inputs(frame, csv, parquet, expected)


Score = Callable[..., tuple[BatchSummary, pd.DataFrame]]


@pytest.fixture
def score(trained_project: TrainedProject, tmp_path: Path) -> Score:
    """``score(input, output_name="out.parquet", **options)``: run a job, read its output."""

    def run(
        source: Path | str, output_name: str = "out.parquet", **options: Any
    ) -> tuple[BatchSummary, pd.DataFrame]:
        out = tmp_path / output_name
        summary = api.predict_batch(REF, source, out, settings=trained_project.settings, **options)
        return summary, read_output(out)

    return run


def read_output(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    return frame.astype({"application_id": str}) if "application_id" in frame else frame


def done_chunks(output: Path) -> list[int]:
    """The chunks whose part a job writing ``output`` left for a resume."""
    return sorted(PartSink(output, "parquet").done())


ATOLL = Path(sys.executable).with_name("atoll")
WAIT_S = 120


def kill_midway(project_dir: Path, args: list[str], out: Path, parts: int) -> list[int]:
    """Run ``atoll predict ARGS`` writing ``out``; once ``parts`` parts exist, freeze it
    (nothing more is written), kill it, and return the chunks it left done."""
    command = [str(ATOLL), "-C", str(project_dir), "predict", *args, "--output", str(out)]
    log = out.with_name(f"{out.name}.log")
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=clean_env(), stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + WAIT_S
        while len(done_chunks(out)) < parts and process.poll() is None:
            assert time.monotonic() < deadline, "no parts appeared"
            time.sleep(0.005)
        process.send_signal(signal.SIGSTOP)  # frozen mid-job: nothing more is written
        assert process.poll() is None, log.read_text()
        done = done_chunks(out)
        process.kill()
    finally:
        process.kill()
        process.wait(30)
    assert done_chunks(out) == done  # the parent writes every part: none came after SIGSTOP
    return done


def clean_env() -> dict[str, str]:
    """The environment of an ``atoll`` subprocess: no developer's ATOLL_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATOLL_")}
    env["ATOLL_ACTOR"] = "batch-test"
    return env


def write_rows(frame: pd.DataFrame, path: Path, **parquet_options: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False, **parquet_options)
    return path


def with_bad_row(frame: pd.DataFrame, row: int, path: Path, **parquet_options: Any) -> Path:
    """``frame`` written to ``path`` with row ``row`` made invalid (an age below the minimum)."""
    bad = frame.copy()
    bad.loc[row, "age"] = 5
    return write_rows(bad, path, **parquet_options)
