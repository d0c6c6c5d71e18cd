"""Batch output equals ``Predictor.predict`` on the whole frame, and the server's answers.

Exact equality: every chunk runs the same validation and the same model code,
so any difference would be a real difference in what was computed.
"""

from __future__ import annotations

import math
from pathlib import Path

import httpx
import pandas as pd
import pytest

from atoll.serve.app import AppOptions, create_app
from atoll.spec_serve import LogSpec, ServeSpec
from tests.batch.conftest import ROWS, Inputs, Score, write_rows
from tests.conftest import TrainedProject
from tests.serve.conftest import running_server
from tests.serve.wire import PREDICT, native_answers


def assert_same(out: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        out.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False
    )


def test_csv_in_process_equals_predictor_on_the_whole_frame(inputs: Inputs, score: Score) -> None:
    summary, out = score(inputs.csv, chunk_rows=170)
    assert_same(out, inputs.expected)
    assert list(out.columns) == [
        "application_id", "row", "prediction", "probability_0", "probability_1", "model_version"
    ]  # fmt: skip
    assert (summary.rows_scored, summary.rows_quarantined) == (ROWS, 0)
    assert summary.quarantine is None
    assert summary.chunks == math.ceil(ROWS / 170)
    assert summary.engine == "local" and summary.workers == 1


def test_parquet_in_two_worker_processes_to_csv_equals_predictor(
    inputs: Inputs, score: Score, tmp_path: Path
) -> None:
    summary, out = score(inputs.parquet, "out.csv", workers=2, chunk_rows=400)
    assert_same(out, inputs.expected)  # the CSV writer keeps every float exactly
    assert summary.workers == 2
    assert 1 <= summary.peak_in_flight <= 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no work folder left


def test_chosen_passthrough_columns_are_copied_as_read(inputs: Inputs, score: Score) -> None:
    _, chosen = score(inputs.parquet, passthrough=["age", "email"], chunk_rows=1000)
    predicted = ["row", "prediction", "probability_0", "probability_1", "model_version"]
    assert list(chosen.columns) == ["age", "email", *predicted]
    for name in ("age", "email"):
        pd.testing.assert_series_equal(chosen[name], inputs.frame[name], check_dtype=False)
    _, bare = score(inputs.parquet, "bare.parquet", passthrough=[], chunk_rows=1000)
    assert list(bare.columns) == predicted


@pytest.mark.slow
def test_batch_equals_the_server_for_the_same_rows(
    inputs: Inputs, score: Score, trained_project: TrainedProject, tmp_path: Path
) -> None:
    source = write_rows(inputs.frame.head(40), tmp_path / "in" / "rows.csv")
    head = pd.read_csv(source)
    assert head.isna().any().any()  # the imputing path too
    rows = head.astype(object).where(head.notna(), None).to_dict("records")
    options = AppOptions(
        trained_project.settings, serve=ServeSpec(auth=False), log=LogSpec(enabled=False)
    )
    with running_server(create_app(options)) as url:
        response = httpx.post(
            url + PREDICT.format(name="credit-risk"), json={"instances": rows}, timeout=30
        )
    assert response.status_code == 200, response.text
    served = native_answers(response.json())
    _, batch = score(source, chunk_rows=7)
    assert [label for label, _ in served] == batch["prediction"].tolist()
    assert [p for _, p in served] == batch[["probability_0", "probability_1"]].values.tolist()
