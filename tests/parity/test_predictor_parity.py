"""One prediction path: the same rows give identical outputs however they are scored."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from atoll.api import open_registry
from atoll.data.sources import read_frame
from atoll.model.predictor import Prediction, Predictor
from tests.conftest import TrainedProject

ROWS = 60


@pytest.fixture(scope="module")
def new_rows(trained_project: TrainedProject) -> pd.DataFrame:
    frame = read_frame("data/new_applications.csv", trained_project.spec_path.parent)
    return frame.head(ROWS)


def _same(a: Prediction, b: Prediction) -> None:
    np.testing.assert_array_equal(a.predictions, b.predictions)
    assert a.probabilities is not None and b.probabilities is not None
    np.testing.assert_array_equal(a.probabilities, b.probabilities)
    assert a.classes == b.classes


def test_row_by_row_equals_whole_frame(loaded: Predictor, new_rows: pd.DataFrame) -> None:
    whole = loaded.predict(new_rows)
    for i in range(len(new_rows)):
        one = loaded.predict(new_rows.iloc[[i]])
        np.testing.assert_array_equal(one.probabilities, whole.probabilities[[i]])  # type: ignore[index]
        assert one.predictions[0] == whole.predictions[i]


def test_json_records_equal_the_frame(loaded: Predictor, new_rows: pd.DataFrame) -> None:
    """Records as an HTTP client would send them (ISO dates, null for missing)."""
    records = json.loads(new_rows.to_json(orient="records", date_format="iso"))
    _same(loaded.predict(records), loaded.predict(new_rows))


def test_before_and_after_save_and_load(
    trained_project: TrainedProject, loaded: Predictor, new_rows: pd.DataFrame
) -> None:
    in_training = trained_project.outcome.result.predictor
    _same(in_training.predict(new_rows), loaded.predict(new_rows))


def test_package_reopened_from_disk_agrees(
    trained_project: TrainedProject, loaded: Predictor, new_rows: pd.DataFrame
) -> None:
    with open_registry(trained_project.settings) as registry:
        directory = registry.fetch_package("credit-risk@production")
    _same(Predictor.open(directory).predict(new_rows), loaded.predict(new_rows))


def test_probabilities_are_valid(loaded: Predictor, new_rows: pd.DataFrame) -> None:
    result = loaded.predict(new_rows)
    assert result.probabilities is not None
    assert np.all((result.probabilities >= 0) & (result.probabilities <= 1))
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0)
    assert set(result.predictions.tolist()) <= {0, 1}
    assert loaded.classes == [0, 1]
