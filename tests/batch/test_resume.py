"""A job killed midway, run again with the same arguments, ends with the same output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from atoll import api
from atoll.batch.job import BatchSummary, Progress
from atoll.errors import DataError
from tests.batch.conftest import REF, ROWS, Inputs, done_chunks, kill_midway, with_bad_row
from tests.conftest import TrainedProject

CHUNK_ROWS = 50
PARTS_BEFORE_KILL = 3


class Notes:
    """A progress reporter that keeps the notes (resuming, starting over)."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)

    def progress(self, progress: Progress) -> None:
        return None


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_resume_after_sigkill_gives_the_output_of_an_uninterrupted_run(
    trained_project: TrainedProject, inputs: Inputs, tmp_path: Path, workers: int
) -> None:
    """With two workers chunks finish out of order: the done ones may have gaps to fill."""
    out = tmp_path / "killed.parquet"
    work = tmp_path / "killed.parquet.partial"
    args = ["--model", REF, "--input", str(inputs.csv), "--chunk-rows", str(CHUNK_ROWS),
            "--workers", str(workers)]  # fmt: skip
    left = kill_midway(trained_project.spec_path.parent, args, out, PARTS_BEFORE_KILL)
    assert PARTS_BEFORE_KILL <= len(left) < ROWS // CHUNK_ROWS
    assert not out.exists()

    notes = Notes()
    resumed = api.predict_batch(
        REF, inputs.csv, out, chunk_rows=CHUNK_ROWS, workers=workers, reporter=notes,
        settings=trained_project.settings,
    )  # fmt: skip
    assert resumed.chunks_resumed == len(left)
    assert resumed.rows_resumed == resumed.chunks_resumed * CHUNK_ROWS
    assert resumed.rows_scored == ROWS
    assert notes.notes == [f"resuming: {resumed.chunks_resumed} chunks were done by an earlier run"]
    assert not work.exists()

    whole = tmp_path / "whole.parquet"
    api.predict_batch(
        REF, inputs.csv, whole, chunk_rows=CHUNK_ROWS, settings=trained_project.settings
    )
    assert out.read_bytes() == whole.read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(whole))


def test_a_failed_job_resumes_and_other_arguments_start_over(
    trained_project: TrainedProject, inputs: Inputs, tmp_path: Path
) -> None:
    source = with_bad_row(inputs.frame.head(400), 250, tmp_path / "in.parquet", row_group_size=50)
    out = tmp_path / "out.parquet"

    def run(**options: Any) -> tuple[Notes, BatchSummary]:
        notes = Notes()
        summary = api.predict_batch(
            REF, source, out, reporter=notes, settings=trained_project.settings, **options
        )
        return notes, summary

    with pytest.raises(DataError, match="row 250"):
        run(chunk_rows=50, fail_on_invalid=True)  # chunks 0-4 are written, in order
    assert done_chunks(out) == [0, 1, 2, 3, 4]

    notes, summary = run(chunk_rows=50)  # the same parts: --fail-on-invalid changes none
    assert summary.chunks_resumed == 5
    assert summary.rows_quarantined == 1
    assert notes.notes == ["resuming: 5 chunks were done by an earlier run"]
    first = pd.read_parquet(out)

    with pytest.raises(DataError, match="row 250"):
        run(chunk_rows=50, fail_on_invalid=True)
    notes, summary = run(chunk_rows=40)  # other chunks: the parts cannot be reused
    assert summary.chunks_resumed == 0
    assert notes.notes[0].endswith("were for other arguments or input: starting over")
    pd.testing.assert_frame_equal(pd.read_parquet(out), first)
