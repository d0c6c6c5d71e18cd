"""Columns (what the HTTP codecs decode) score exactly like records and frames."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from atoll.data.sources import read_frame
from atoll.errors import DataError, SchemaError
from atoll.model.predictor import Prediction, Predictor
from tests.conftest import TrainedProject

ROWS = 80  # more than the few rows validated without pandas: both routes are taken


@pytest.fixture(scope="module")
def rows(trained_project: TrainedProject) -> pd.DataFrame:
    frame = read_frame("data/new_applications.csv", trained_project.spec_path.parent)
    return frame.head(ROWS)


def json_columns(frame: pd.DataFrame) -> dict[str, list[Any]]:
    """The rows as a JSON client sends them (ISO dates, null), one list per column."""
    records = json.loads(frame.to_json(orient="records", date_format="iso"))
    return {name: [record[name] for record in records] for name in frame.columns}


def same(a: Prediction, b: Prediction) -> None:
    np.testing.assert_array_equal(a.predictions, b.predictions)
    assert a.probabilities is not None and b.probabilities is not None
    np.testing.assert_array_equal(a.probabilities, b.probabilities)
    assert a.classes == b.classes


def test_columns_equal_records_and_the_frame(loaded: Predictor, rows: pd.DataFrame) -> None:
    columns = json_columns(rows)
    records = json.loads(rows.to_json(orient="records", date_format="iso"))
    same(loaded.predict(columns), loaded.predict(rows))
    same(loaded.predict(columns), loaded.predict(records))


def test_one_row_of_columns_equals_its_row_in_the_batch(
    loaded: Predictor, rows: pd.DataFrame
) -> None:
    whole = loaded.predict(json_columns(rows))
    assert whole.probabilities is not None
    for i in range(0, ROWS, 7):
        one = loaded.predict(json_columns(rows.iloc[[i]]))
        np.testing.assert_array_equal(one.probabilities, whole.probabilities[[i]])  # type: ignore[index]


def test_bad_columns_are_refused(loaded: Predictor, rows: pd.DataFrame) -> None:
    columns = json_columns(rows.head(3))
    columns["age"][1] = 7
    with pytest.raises(SchemaError) as info:
        loaded.predict(columns)
    assert [(v.column, v.rule, v.rows) for v in info.value.report.violations] == [
        ("age", "min", [1])
    ]
    columns["income"] = columns["income"][:2]
    with pytest.raises(DataError, match="different lengths"):
        loaded.predict(columns)
