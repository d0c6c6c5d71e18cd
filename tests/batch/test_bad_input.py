"""Every bad input of the issue fails with a clear error; before any work whenever it can."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from atoll import api
from atoll.errors import AtollError, DataError, NotFoundError
from tests.batch.conftest import REF, Inputs, done_chunks, write_rows
from tests.conftest import TrainedProject
from tests.serve.running import free_port


def predict(project: TrainedProject, source: Path | str, out: Path, **options: Any) -> None:
    api.predict_batch(REF, source, out, settings=project.settings, **options)


def assert_untouched(directory: Path, *names: str) -> None:
    """No output, no work folder: the job failed before any work."""
    assert sorted(p.name for p in directory.iterdir()) == sorted(names)


@pytest.fixture
def small(inputs: Inputs) -> pd.DataFrame:
    return inputs.frame.head(200)


def test_missing_input(trained_project: TrainedProject, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data file not found: .*nothere\.csv"):
        predict(trained_project, tmp_path / "nothere.csv", tmp_path / "out.csv")
    with pytest.raises(DataError, match="no files match"):
        predict(trained_project, str(tmp_path / "none-*.parquet"), tmp_path / "out.csv")
    assert_untouched(tmp_path)


def test_unwritable_output(
    trained_project: TrainedProject, small: pd.DataFrame, tmp_path: Path
) -> None:
    source = write_rows(small, tmp_path / "in.csv")
    (tmp_path / "afile").write_text("a file, not a folder")
    with pytest.raises(DataError, match=r"cannot write the output .*afile"):
        predict(trained_project, source, tmp_path / "afile" / "out.csv")
    (tmp_path / "adir.csv").mkdir()
    with pytest.raises(DataError, match="is a directory"):
        predict(trained_project, source, tmp_path / "adir.csv")
    with pytest.raises(DataError, match=r"\.csv or \.parquet"):
        predict(trained_project, source, tmp_path / "out.txt")
    assert_untouched(tmp_path, "afile", "adir.csv", "in.csv")


def test_empty_inputs(trained_project: TrainedProject, small: pd.DataFrame, tmp_path: Path) -> None:
    header_only = write_rows(small.head(0), tmp_path / "header.csv")
    with pytest.raises(DataError, match=r"header\.csv holds no rows"):
        predict(trained_project, header_only, tmp_path / "out.csv")
    no_rows = write_rows(small.head(0), tmp_path / "none.parquet")
    with pytest.raises(DataError, match=r"none\.parquet holds no rows"):
        predict(trained_project, no_rows, tmp_path / "out.csv")
    (tmp_path / "zero.csv").write_bytes(b"")
    with pytest.raises(DataError, match=r"zero\.csv is empty"):
        predict(trained_project, tmp_path / "zero.csv", tmp_path / "out.csv")
    assert_untouched(tmp_path, "header.csv", "none.parquet", "zero.csv")


def test_wrong_columns_fail_before_any_work(
    trained_project: TrainedProject, small: pd.DataFrame, tmp_path: Path
) -> None:
    lacking = write_rows(small.drop(columns=["age", "income"]), tmp_path / "lacking.csv")
    with pytest.raises(DataError, match=r"lacking\.csv lacks the model's feature columns: age, "):
        predict(trained_project, lacking, tmp_path / "out.csv")
    extra = write_rows(small.assign(bogus=1), tmp_path / "extra.parquet")
    with pytest.raises(DataError, match="not in the model's schema: bogus"):
        predict(trained_project, extra, tmp_path / "out.csv")
    with pytest.raises(DataError, match="no column nope to pass through"):
        predict(trained_project, extra, tmp_path / "out.csv", passthrough=["bogus", "nope"])
    assert_untouched(tmp_path, "lacking.csv", "extra.parquet")


def test_mixed_schemas_across_a_glob(
    trained_project: TrainedProject, small: pd.DataFrame, tmp_path: Path
) -> None:
    write_rows(small, tmp_path / "in" / "a.parquet")
    write_rows(small.drop(columns=["email"]), tmp_path / "in" / "b.parquet")
    with pytest.raises(DataError, match=r"b.parquet has other columns than .*a.parquet.*email"):
        predict(trained_project, str(tmp_path / "in" / "*.parquet"), tmp_path / "out.csv")
    write_rows(small, tmp_path / "mixed" / "a.csv")
    write_rows(small, tmp_path / "mixed" / "b.parquet")
    with pytest.raises(DataError, match="both CSV and Parquet"):
        predict(trained_project, str(tmp_path / "mixed" / "*"), tmp_path / "out.csv")
    assert_untouched(tmp_path, "in", "mixed")


def test_a_glob_is_scored_file_after_file_in_sorted_order(
    trained_project: TrainedProject, inputs: Inputs, tmp_path: Path
) -> None:
    for name, part in (("b", inputs.frame[100:250]), ("a", inputs.frame[:100])):
        write_rows(part, tmp_path / "in" / f"{name}.csv")
    summary = api.predict_batch(
        REF, str(tmp_path / "in" / "*.csv"), tmp_path / "out.parquet", chunk_rows=64,
        settings=trained_project.settings,
    )  # fmt: skip
    assert summary.chunks == 2 + 3  # chunks never span two files
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out["row"].tolist() == list(range(250))
    assert out["application_id"].tolist() == inputs.frame["application_id"][:250].tolist()


def test_corrupt_parquet(trained_project: TrainedProject, inputs: Inputs, tmp_path: Path) -> None:
    (tmp_path / "garbage.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match=r"cannot read .*garbage\.parquet"):
        predict(trained_project, tmp_path / "garbage.parquet", tmp_path / "out.parquet")

    damaged = tmp_path / "damaged.parquet"
    inputs.frame.head(800).to_parquet(damaged, row_group_size=200, write_page_checksum=True)
    column = pq.read_metadata(damaged).row_group(2).column(3)
    middle = column.data_page_offset + column.total_compressed_size // 2
    with damaged.open("r+b") as handle:
        handle.seek(middle)
        handle.write(b"\xff" * 16)
    with pytest.raises(DataError, match=r"cannot read .*damaged.parquet \(row group 2\)"):
        predict(trained_project, damaged, tmp_path / "out.parquet", chunk_rows=200)
    assert done_chunks(tmp_path / "out.parquet") == [0, 1]  # the row groups before it are kept
    assert not (tmp_path / "out.parquet").exists()


def test_truncated_csv_names_the_file_and_keeps_earlier_parts(
    trained_project: TrainedProject, tmp_path: Path
) -> None:
    from atoll.data.synthetic import TARGET, credit_risk

    text = credit_risk(12_000, seed=3).drop(columns=[TARGET]).to_csv(index=False)
    cut = tmp_path / "cut.csv"
    cut.write_text(text[: len(text) - 40])  # the last row loses its last columns
    with pytest.raises(DataError, match=r"cannot read .*cut.csv after its first [\d,]+ rows"):
        predict(trained_project, cut, tmp_path / "out.csv", chunk_rows=2000)
    assert done_chunks(tmp_path / "out.csv")  # the blocks before the broken one are kept
    assert not (tmp_path / "out.csv").exists()


def test_unknown_model_ref(
    trained_project: TrainedProject, small: pd.DataFrame, tmp_path: Path
) -> None:
    source = write_rows(small, tmp_path / "in.csv")
    with pytest.raises(NotFoundError, match="'nope'"):
        api.predict_batch(
            "nope@production", source, tmp_path / "out.csv", settings=trained_project.settings
        )
    assert_untouched(tmp_path, "in.csv")


def test_unreachable_scheduler_fails_fast_and_cleanly(
    trained_project: TrainedProject, small: pd.DataFrame, tmp_path: Path
) -> None:
    source = write_rows(small, tmp_path / "in.csv")
    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(AtollError, match=f"cannot reach the Dask scheduler at {address}"):
        predict(trained_project, source, tmp_path / "out.csv", engine="dask", address=address)
    assert_untouched(tmp_path, "in.csv")
    with pytest.raises(DataError, match="--engine dask"):
        predict(trained_project, source, tmp_path / "out.csv", address=address)
