"""Invalid rows go to the quarantine file with their reasons; the valid ones are scored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atoll import api
from atoll.errors import DataError
from atoll.store.jobs import JobStore
from tests.batch.conftest import REF, Inputs, Score, done_chunks, write_rows
from tests.conftest import TrainedProject

BROKEN = {
    *[(row, "loan_amount", "null") for row in range(5)],  # the whole first chunk
    (7, "age", "min"),
    (10, "home_ownership", "unknown_category"),
    (20, "age", "min"),  # two rules broken in one column of one chunk
    (22, "age", "max"),
    (30, "income", "type"),
    (40, "age", "min"),  # one row, two columns
    (40, "home_ownership", "unknown_category"),
}


def broken_frame(inputs: Inputs, text_cell: bool = True) -> pd.DataFrame:
    frame = inputs.frame.head(300).copy()
    frame["income"] = frame["income"].astype(object)
    frame.loc[0:4, "loan_amount"] = None
    frame.loc[[7, 20, 40], "age"] = 5
    frame.loc[22, "age"] = 200
    frame.loc[[10, 40], "home_ownership"] = "castle"
    if text_cell:
        frame.loc[30, "income"] = "lots"
    else:
        frame["income"] = frame["income"].astype(float)
    return frame


def test_invalid_rows_are_quarantined_with_their_reasons(
    inputs: Inputs, score: Score, tmp_path: Path
) -> None:
    source = write_rows(broken_frame(inputs), tmp_path / "in" / "broken.csv")
    summary, out = score(source, "scored.csv", chunk_rows=5)

    bad_rows = sorted({row for row, _, _ in BROKEN})
    assert summary.rows_quarantined == len(bad_rows)
    assert summary.rows_scored == 300 - len(bad_rows)
    assert summary.quarantine == tmp_path / "scored.quarantine.csv"
    # the rule "null" is text: pandas would read it as a missing value by default
    quarantine = pd.read_csv(summary.quarantine, keep_default_na=False, na_values=[""])
    assert list(quarantine.columns) == ["row", "column", "rule", "reason", "value"]
    assert set(zip(quarantine["row"], quarantine["column"], quarantine["rule"], strict=True)) == (
        BROKEN
    )
    assert quarantine["row"].is_monotonic_increasing
    where = list(zip(quarantine["row"], quarantine["column"], strict=True))
    reasons = dict(zip(where, quarantine["reason"], strict=True))
    assert reasons[7, "age"] == "values below min 18"
    assert reasons[22, "age"] == "values above max 120"
    values = dict(zip(where, quarantine["value"], strict=True))
    assert values[30, "income"] == "lots"
    assert values[10, "home_ownership"] == "castle"
    assert pd.isna(values[0, "loan_amount"])

    # the valid rows keep their input row numbers and get exactly the predictions they get alone
    assert out["row"].tolist() == [r for r in range(300) if r not in bad_rows]
    expected = inputs.expected.set_index("row").loc[out["row"]]
    assert np.array_equal(out["prediction"], expected["prediction"])
    assert np.array_equal(out["probability_1"], expected["probability_1"])


def test_parquet_quarantine_matches_and_a_clean_rerun_removes_the_stale_file(
    inputs: Inputs, score: Score, tmp_path: Path
) -> None:
    source = write_rows(broken_frame(inputs, text_cell=False), tmp_path / "in" / "broken.parquet")
    summary, _ = score(source, chunk_rows=64)
    assert summary.quarantine == tmp_path / "out.quarantine.parquet"
    lines = pd.read_parquet(summary.quarantine)
    found = set(zip(lines["row"], lines["column"], lines["rule"], strict=True))
    assert found == BROKEN - {(30, "income", "type")}

    clean = write_rows(inputs.frame.head(50), tmp_path / "in" / "clean.parquet")
    again, _ = score(clean)
    assert again.quarantine is None
    assert not summary.quarantine.exists()  # not left to be mistaken for this run's


def test_fail_on_invalid_stops_at_the_first_invalid_row(
    inputs: Inputs, trained_project: TrainedProject, tmp_path: Path
) -> None:
    frame = inputs.frame.head(300).copy()
    frame.loc[123, "age"] = 5
    source = write_rows(frame, tmp_path / "bad.parquet")
    out = tmp_path / "out.parquet"
    with pytest.raises(DataError, match=r"row 123, column age: values below min 18") as caught:
        api.predict_batch(
            REF, source, out, chunk_rows=50, fail_on_invalid=True,
            settings=trained_project.settings,
        )  # fmt: skip
    assert caught.value.context == {"row": 123, "column": "age"}
    assert not out.exists()
    assert done_chunks(out) == [0, 1]  # the chunks before it are kept for a resume

    with api.open_registry(trained_project.settings) as registry:
        [job] = JobStore(registry.engine).list(model="credit-risk", limit=1)
    assert job.status == "failed"
    assert job.error is not None and "row 123" in job.error
    assert job.options["fail_on_invalid"] is True


def test_parts_are_ordered_by_chunk_number_past_six_digits(tmp_path: Path) -> None:
    """As text part-1000000 sorts before part-100001: the chunk number must order them."""
    from atoll.batch.sink import _chunk_index

    names = ["part-1000000.quarantine.arrow", "part-100001.quarantine.arrow", "part-000002.arrow"]
    assert sorted(names) != sorted(names, key=lambda name: _chunk_index(tmp_path / name))
    ordered = sorted((tmp_path / name for name in names), key=_chunk_index)
    assert [_chunk_index(path) for path in ordered] == [2, 100_001, 1_000_000]
