"""Each job is recorded in the store; ``atoll predict`` shows progress, a summary, clean errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
from rich.console import Console

from atoll import api
from atoll.batch.job import Progress
from atoll.data.sources import fingerprint_files
from atoll.store.jobs import JobStore
from tests.batch.conftest import REF, ROWS, Inputs, Score, write_rows
from tests.cli.test_cli import assert_clean_failure, assert_ok, atoll
from tests.conftest import TrainedProject

PROGRESS = Progress(
    rows_done=300, rows_scored=290, rows_quarantined=10, rows_total=1200,
    chunks_done=3, chunks_total=12, rows_resumed=100, seconds=2.0,
)  # fmt: skip


def job_store(project: TrainedProject) -> JobStore:
    with api.open_registry(project.settings) as registry:
        return JobStore(registry.engine)


def test_a_finished_job_is_recorded(
    inputs: Inputs, score: Score, trained_project: TrainedProject, tmp_path: Path
) -> None:
    summary, _ = score(inputs.parquet, "out.csv", chunk_rows=500)
    assert summary.job_id is not None
    job = job_store(trained_project).get(summary.job_id)
    assert (job.model, job.version, job.status, job.error) == ("credit-risk", 1, "succeeded", None)
    assert job.input == str(inputs.parquet)
    assert job.input_fingerprint == fingerprint_files(str(inputs.parquet))
    assert job.output == str(tmp_path / "out.csv")
    assert (job.rows_scored, job.rows_quarantined) == (ROWS, 0)
    assert job.chunks_done == job.chunks_total == summary.chunks
    assert job.seconds is not None and job.finished_at is not None
    assert job.options == {
        "engine": "local", "workers": 1, "chunk_rows": 500, "format": "csv",
        "passthrough": ["application_id"], "fail_on_invalid": False, "log": False,
    }  # fmt: skip
    assert job.rows_logged is None and summary.rows_logged is None


def test_predict_command_prints_a_summary_and_json(
    inputs: Inputs, trained_project: TrainedProject, tmp_path: Path
) -> None:
    root = trained_project.spec_path.parent
    frame = inputs.frame.head(200).copy()
    frame.loc[5, "age"] = 5
    source = write_rows(frame, tmp_path / "in.csv")
    out = tmp_path / "out.parquet"
    common = ["-C", root, "predict", "--model", REF, "--input", source, "--output", out]
    result = atoll(*common, "--chunk-rows", "64", "--columns-passthrough", "application_id,email")
    assert_ok(result)
    assert f"scored 199 rows with {REF} (version 1) -> {out}" in result.stdout
    assert f"quarantined 1 invalid rows -> {tmp_path / 'out.quarantine.parquet'}" in result.stderr
    assert list(pd.read_parquet(out).columns[:2]) == ["application_id", "email"]

    as_json = atoll(*common, "--format", "csv", "--json", "--workers", "1")
    assert_ok(as_json)
    summary = json.loads(as_json.stdout)
    assert (summary["rows_scored"], summary["rows_quarantined"]) == (199, 1)
    assert summary["output"] == str(out)
    assert summary["quarantine"] == str(tmp_path / "out.quarantine.csv")
    assert job_store(trained_project).get(summary["job_id"]).status == "succeeded"
    assert pd.read_csv(out)["row"].tolist() == [r for r in range(200) if r != 5]


def test_predict_command_fails_cleanly_on_bad_input(
    inputs: Inputs, trained_project: TrainedProject, tmp_path: Path
) -> None:
    root = trained_project.spec_path.parent
    source = write_rows(inputs.frame.head(20).drop(columns=["age"]), tmp_path / "in.csv")
    result = atoll(
        "-C", root, "predict", "--model", REF, "--input", source, "--output", tmp_path / "o.csv"
    )
    assert_clean_failure(result, "in.csv lacks the model's feature columns: age")
    usage = atoll("-C", root, "predict", "--model", REF, "--input", source, "--output", "o.csv",
                  "--engine", "ray")  # fmt: skip
    assert usage.exit_code == 2
    assert "'ray' is not one of 'local', 'dask'" in usage.stderr


def test_predict_help_explains_resume_and_quarantine() -> None:
    result = atoll("predict", "--help")
    assert_ok(result)
    text = " ".join(result.stdout.split())
    options = "--model --input --output --format --workers --engine --address --chunk-rows"
    for option in [*options.split(), "--columns-passthrough", "--fail-on-invalid", "--no-log"]:
        assert option in text
    assert "quarantine" in text
    assert "run the same command again and it resumes where it stopped" in text
    assert "the output then has a prediction_id column" in text


def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere() -> None:
    from atoll.cli.predict import BatchReporter, progress_line  # after atoll.cli.main

    assert progress_line(PROGRESS) == "scored 300/1,200 rows, 100 rows/s, about 9s left"
    screen = io.StringIO()
    bar = BatchReporter(Console(file=screen, force_terminal=True, width=120))
    bar.progress(PROGRESS)
    bar.close()
    assert "100 rows/s" in screen.getvalue()
    log = io.StringIO()
    lines = BatchReporter(Console(file=log, force_terminal=False))
    lines.note("resuming: 3 chunks were done by an earlier run")
    lines.progress(PROGRESS)  # the first line waits a few seconds: nothing yet
    assert log.getvalue() == "resuming: 3 chunks were done by an earlier run\n"
