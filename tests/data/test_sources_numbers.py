"""CSV text in a numeric column: numbers parsed, only the bad cells left for validation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from atoll.data.sources import parse_numbers, read_frame
from atoll.schema import Column, Schema
from atoll.types import ColumnType


def test_only_the_bad_cells_stay_text(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("age,y\n31,1\nabc,0\n45,1\n,0\n")
    frame = read_frame("rows.csv", tmp_path, numeric=["age"])
    assert frame["age"].tolist()[:3] == [31.0, "abc", 45.0]
    assert pd.isna(frame["age"].iloc[3])
    schema = Schema({"age": Column(type=ColumnType.INT), "y": Column(type=ColumnType.INT)}, "y")
    report = schema.validate(frame, "train").report
    assert [(v.column, v.rule, v.rows) for v in report.violations] == [("age", "type", [1])]


def test_numeric_columns_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("age,y\n31,1\n45,0\n")
    frame = read_frame("rows.csv", tmp_path, numeric=["age", "missing"])
    assert frame["age"].dtype.kind == "i"


def test_parse_numbers_keeps_the_index() -> None:
    series = pd.Series(["1.5", "x", None], index=[10, 11, 12], dtype=object)
    out = parse_numbers(series)
    assert out.index.tolist() == [10, 11, 12]
    assert out.tolist()[:2] == [1.5, "x"]
