"""Data sources: CSV and Parquet files, globs, batches and SQL, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from atoll.data.sources import iter_frames, read_frame, read_sql, read_table, resolve_files
from atoll.errors import DataError


def sample(n: int = 50, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": [f"r{i:05d}" for i in range(n)],
            "age": rng.integers(18, 90, size=n),
            "income": np.round(rng.normal(50_000, 9_000, size=n), 2),
            "city": rng.choice(["oslo", "lima", "pune"], size=n),
            "flag": rng.random(n) < 0.5,
        }
    )


def same_values(left: pd.DataFrame, right: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        left.reset_index(drop=True), right.reset_index(drop=True), check_dtype=False
    )


# --- files --------------------------------------------------------------------------


def test_read_csv(tmp_path: Path) -> None:
    frame = sample()
    frame.to_csv(tmp_path / "rows.csv", index=False)
    out = read_frame(str(tmp_path / "rows.csv"))
    same_values(out, frame)
    assert out["age"].dtype == np.int64
    assert out["income"].dtype == np.float64
    assert out["flag"].dtype == bool


def test_read_parquet(tmp_path: Path) -> None:
    frame = sample()
    frame.to_parquet(tmp_path / "rows.parquet", index=False)
    same_values(read_frame(str(tmp_path / "rows.parquet")), frame)


def test_read_pq_suffix_and_upper_case_suffix(tmp_path: Path) -> None:
    frame = sample(10)
    frame.to_parquet(tmp_path / "rows.pq", index=False)
    frame.to_csv(tmp_path / "ROWS.CSV", index=False)
    same_values(read_frame("rows.pq", base_dir=tmp_path), frame)
    same_values(read_frame("ROWS.CSV", base_dir=tmp_path), frame)


def test_parquet_keeps_nulls_and_datetimes(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "when": pd.to_datetime(["2024-01-01", None, "2024-03-01"], format="ISO8601"),
            "x": [1.5, np.nan, 3.0],
            "s": ["a", None, "c"],
        }
    )
    frame.to_parquet(tmp_path / "rows.parquet", index=False)
    out = read_frame("rows.parquet", base_dir=tmp_path)
    assert out["when"].isna().tolist() == [False, True, False]
    assert out["x"].isna().tolist() == [False, True, False]
    assert out["s"].isna().tolist() == [False, True, False]
    assert out["when"].iloc[2] == pd.Timestamp("2024-03-01")


def test_relative_path_resolves_against_base_dir(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    sample(5).to_csv(tmp_path / "data" / "rows.csv", index=False)
    assert resolve_files("data/rows.csv", base_dir=tmp_path) == [tmp_path / "data" / "rows.csv"]
    assert len(read_frame("data/rows.csv", base_dir=tmp_path)) == 5


def test_absolute_path_ignores_base_dir(tmp_path: Path) -> None:
    file = tmp_path / "rows.csv"
    sample(5).to_csv(file, index=False)
    assert resolve_files(str(file), base_dir=tmp_path / "elsewhere") == [file]


def test_glob_over_several_files(tmp_path: Path) -> None:
    frame = sample(90)
    (tmp_path / "parts").mkdir()
    for index, start in enumerate(range(0, 90, 30)):
        part = frame.iloc[start : start + 30]
        part.to_csv(tmp_path / "parts" / f"part-{index}.csv", index=False)
    (tmp_path / "parts" / "notes.txt").write_text("not data")
    files = resolve_files("parts/*.csv", base_dir=tmp_path)
    assert [f.name for f in files] == ["part-0.csv", "part-1.csv", "part-2.csv"]
    same_values(read_frame("parts/*.csv", base_dir=tmp_path), frame)


def test_glob_files_are_read_in_sorted_order(tmp_path: Path) -> None:
    for name, value in [("b.parquet", 2), ("a.parquet", 1), ("c.parquet", 3)]:
        pd.DataFrame({"v": [value]}).to_parquet(tmp_path / name, index=False)
    assert read_frame("*.parquet", base_dir=tmp_path)["v"].tolist() == [1, 2, 3]


def test_recursive_glob(tmp_path: Path) -> None:
    for sub in ("x", "y/z"):
        (tmp_path / sub).mkdir(parents=True)
        sample(4).to_parquet(tmp_path / sub / "rows.parquet", index=False)
    assert len(read_frame("**/*.parquet", base_dir=tmp_path)) == 8


def test_glob_with_missing_columns_is_filled_with_nulls(tmp_path: Path) -> None:
    pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]}).to_parquet(tmp_path / "p1.parquet")
    pd.DataFrame({"a": [3]}).to_parquet(tmp_path / "p2.parquet")
    out = read_frame("p*.parquet", base_dir=tmp_path)
    assert out["a"].tolist() == [1, 2, 3]
    assert out["b"].isna().tolist() == [False, False, True]


def test_glob_files_disagreeing_on_types(tmp_path: Path) -> None:
    pd.DataFrame({"a": [1, 2]}).to_parquet(tmp_path / "p1.parquet")
    pd.DataFrame({"a": ["x", "y"]}).to_parquet(tmp_path / "p2.parquet")
    with pytest.raises(DataError, match="disagree on columns") as info:
        read_frame("p*.parquet", base_dir=tmp_path)
    assert "p*.parquet" in str(info.value)


def test_glob_matching_nothing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no files match 'nothing-\*\.csv'") as info:
        read_frame("nothing-*.csv", base_dir=tmp_path)
    assert info.value.context["file"] == str(tmp_path / "nothing-*.csv")


def test_glob_matching_a_file_of_unknown_format(tmp_path: Path) -> None:
    sample(3).to_csv(tmp_path / "a.csv", index=False)
    (tmp_path / "b.json").write_text("{}")
    with pytest.raises(DataError, match=r"unknown data format '\.json'") as info:
        read_frame("*", base_dir=tmp_path)
    assert "b.json" in str(info.value)


# --- file errors --------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    with pytest.raises(DataError, match="data file not found") as info:
        read_frame(str(missing))
    assert str(missing) in str(info.value)
    assert info.value.context == {"file": str(missing)}


def test_missing_file_when_iterating(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing\.parquet"):
        next(iter_frames("missing.parquet", base_dir=tmp_path))


def test_a_directory_is_not_a_data_file(tmp_path: Path) -> None:
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(DataError, match="data file not found"):
        read_frame("dir.csv", base_dir=tmp_path)


@pytest.mark.parametrize("name", ["rows.txt", "rows.xlsx", "rows", "rows.csv.gz", "rows.json"])
def test_unknown_suffix(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="unknown data format") as info:
        read_frame(name, base_dir=tmp_path)
    message = str(info.value)
    assert name in message
    assert ".csv, .parquet, .pq" in message
    assert info.value.context == {"file": str(tmp_path / name)}


def test_unknown_suffix_of_a_missing_file_names_the_format(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"unknown data format '\.xls'"):
        resolve_files("gone.xls", base_dir=tmp_path)


def test_empty_csv_file(tmp_path: Path) -> None:
    file = tmp_path / "empty.csv"
    file.write_bytes(b"")
    with pytest.raises(DataError, match="cannot read") as info:
        read_frame(str(file))
    assert str(file) in str(info.value)
    assert info.value.context == {"file": str(file)}
    with pytest.raises(DataError, match=r"empty\.csv"):
        list(iter_frames(str(file)))


def test_csv_with_a_header_and_no_rows(tmp_path: Path) -> None:
    file = tmp_path / "header.csv"
    file.write_text("a,b,c\n")
    with pytest.raises(DataError, match="holds no rows") as info:
        read_frame(str(file))
    assert str(file) in str(info.value)


def test_parquet_with_no_rows(tmp_path: Path) -> None:
    file = tmp_path / "none.parquet"
    sample(5).iloc[:0].to_parquet(file, index=False)
    with pytest.raises(DataError, match="holds no rows") as info:
        read_table(file)
    assert str(file) in str(info.value)


def test_garbage_parquet(tmp_path: Path) -> None:
    file = tmp_path / "garbage.parquet"
    file.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(DataError, match="cannot read") as info:
        read_frame(str(file))
    assert str(file) in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match=r"garbage\.parquet"):
        list(iter_frames(str(file)))


def test_csv_renamed_to_parquet(tmp_path: Path) -> None:
    file = tmp_path / "actually.parquet"
    sample(5).to_csv(file, index=False)
    with pytest.raises(DataError, match=r"actually\.parquet"):
        read_frame(str(file))


def test_binary_garbage_csv(tmp_path: Path) -> None:
    file = tmp_path / "garbage.csv"
    file.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(DataError, match="cannot read") as info:
        read_frame(str(file))
    assert str(file) in str(info.value)
    with pytest.raises(DataError, match=r"garbage\.csv"):
        list(iter_frames(str(file)))


def test_ragged_csv(tmp_path: Path) -> None:
    file = tmp_path / "ragged.csv"
    file.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(DataError, match=r"ragged\.csv"):
        read_frame(str(file))


def test_one_bad_file_in_a_glob_is_named(tmp_path: Path) -> None:
    sample(5).to_parquet(tmp_path / "a.parquet", index=False)
    (tmp_path / "b.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError) as info:
        read_frame("*.parquet", base_dir=tmp_path)
    assert info.value.context == {"file": str(tmp_path / "b.parquet")}


# --- batches ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
@pytest.mark.parametrize("batch_rows", [1, 7, 100, 1000, 5000])
def test_iter_frames_batches_are_bounded_and_complete(
    tmp_path: Path, suffix: str, batch_rows: int
) -> None:
    frame = sample(1050)
    file = tmp_path / f"rows.{suffix}"
    if suffix == "csv":
        frame.to_csv(file, index=False)
    else:
        frame.to_parquet(file, index=False, row_group_size=300)
    batches = list(iter_frames(str(file), batch_rows=batch_rows))
    assert batches
    assert all(0 < len(b) <= batch_rows for b in batches), [len(b) for b in batches]
    assert sum(len(b) for b in batches) == 1050
    if batch_rows < 1050:
        assert len(batches) >= -(-1050 // batch_rows)
    whole = pd.concat(batches, ignore_index=True)
    pd.testing.assert_frame_equal(whole, read_frame(str(file)))


def test_iter_frames_on_a_large_csv_with_small_batches(tmp_path: Path) -> None:
    # many short rows: a single CSV block holds far more than one batch
    frame = pd.DataFrame({"a": np.arange(100_000), "b": np.arange(100_000) % 7})
    frame.to_csv(tmp_path / "big.csv", index=False)
    batches = list(iter_frames("big.csv", base_dir=tmp_path, batch_rows=1000))
    assert max(len(b) for b in batches) == 1000
    assert len(batches) >= 100
    pd.testing.assert_frame_equal(pd.concat(batches, ignore_index=True), frame)


def test_iter_frames_over_a_glob(tmp_path: Path) -> None:
    frame = sample(120)
    frame.iloc[:70].to_parquet(tmp_path / "p1.parquet", index=False)
    frame.iloc[70:].to_parquet(tmp_path / "p2.parquet", index=False)
    batches = list(iter_frames("p*.parquet", base_dir=tmp_path, batch_rows=25))
    assert [len(b) for b in batches] == [25, 25, 20, 25, 25]
    pd.testing.assert_frame_equal(
        pd.concat(batches, ignore_index=True), read_frame("p*.parquet", base_dir=tmp_path)
    )


def test_iter_frames_is_lazy(tmp_path: Path) -> None:
    sample(10).to_csv(tmp_path / "a.csv", index=False)
    (tmp_path / "b.csv").write_bytes(b"")
    frames = iter_frames("*.csv", base_dir=tmp_path, batch_rows=4)
    assert len(next(frames)) == 4  # the first file reads fine ...
    with pytest.raises(DataError, match=r"b\.csv"):  # ... and the broken one fails when reached
        list(frames)


# --- SQL ----------------------------------------------------------------------------


@pytest.fixture
def sqlite_rows(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'rows.db'}"
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    table = sa.Table(
        "applications",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("city", sa.String(20)),
        sa.Column("income", sa.Float),
    )
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            table.insert(),
            [
                {"id": 1, "city": "oslo", "income": 10.5},
                {"id": 2, "city": "lima", "income": None},
                {"id": 3, "city": "pune", "income": 30.0},
            ],
        )
    engine.dispose()
    return url


def test_read_sql(sqlite_rows: str) -> None:
    frame = read_sql(sqlite_rows, "SELECT id, city, income FROM applications ORDER BY id")
    assert list(frame.columns) == ["id", "city", "income"]
    assert frame["id"].tolist() == [1, 2, 3]
    assert frame["city"].tolist() == ["oslo", "lima", "pune"]
    assert frame["income"].iloc[0] == 10.5
    assert np.isnan(frame["income"].iloc[1])


def test_read_sql_with_a_filter(sqlite_rows: str) -> None:
    frame = read_sql(sqlite_rows, "SELECT city FROM applications WHERE income > 20")
    assert frame["city"].tolist() == ["pune"]


def test_read_sql_empty_result(sqlite_rows: str) -> None:
    with pytest.raises(DataError, match="returned no rows") as info:
        read_sql(sqlite_rows, "SELECT * FROM applications WHERE id > 100")
    assert "rows.db" in str(info.value)
    assert info.value.context["source"].startswith("sqlite:///")


def test_read_sql_bad_query(sqlite_rows: str) -> None:
    with pytest.raises(DataError, match="failed") as info:
        read_sql(sqlite_rows, "SELECT * FROM no_such_table")
    assert "no_such_table" in str(info.value)


def test_read_sql_unreachable_database_masks_the_password() -> None:
    url = "postgresql+psycopg://user:secret@127.0.0.1:1/x"
    with pytest.raises(DataError) as info:
        read_sql(url, "SELECT 1")
    message = str(info.value)
    assert "secret" not in message
    assert "secret" not in repr(info.value.context)
    assert "user:***@127.0.0.1:1/x" in message
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


@pytest.mark.parametrize("url", ["not a url", "nosuchdb://user:secret@host/x"])
def test_read_sql_invalid_url(url: str) -> None:
    with pytest.raises(DataError, match="invalid SQL source URL") as info:
        read_sql(url, "SELECT 1")
    assert "secret" not in str(info.value)
