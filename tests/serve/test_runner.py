"""A model thread's batch work with a real trained predictor; the prediction log's records."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import numpy as np
import pytest

from atoll import api
from atoll.errors import SchemaError
from atoll.model.predictor import Prediction, Predictor
from atoll.serve.errors import InvalidOutput
from atoll.serve.runner import check_output, predictor_runner, split
from atoll.store.redact import Redactor
from tests.conftest import TrainedProject


@pytest.fixture(scope="module")
def predictor(trained_project: TrainedProject) -> Predictor:
    return api.load("credit-risk@production", settings=trained_project.settings)


@pytest.fixture(scope="module")
def rows(trained_project: TrainedProject) -> list[dict[str, Any]]:
    return api.demo_request_rows(trained_project.spec_path.parent, 12)


def columns_of(records: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {name: [r.get(name) for r in records] for name in records[0]}


def test_a_batch_answers_each_request_exactly_as_alone(
    predictor: Predictor, rows: list[dict[str, Any]]
) -> None:
    run = predictor_runner(predictor, "credit-risk@1")
    parts = [rows[:1], rows[1:5], rows[5:]]
    merged = columns_of(rows)
    batched = run(merged, [len(p) for p in parts])
    for part, answer in zip(parts, batched, strict=True):
        [alone] = run(columns_of(part), [len(part)])
        assert isinstance(answer, Prediction) and isinstance(alone, Prediction)
        assert answer.predictions.tolist() == alone.predictions.tolist()
        assert answer.probabilities is not None and alone.probabilities is not None
        assert np.array_equal(answer.probabilities, alone.probabilities)


def test_a_bad_request_in_a_batch_fails_alone_with_its_own_row_numbers(
    predictor: Predictor, rows: list[dict[str, Any]]
) -> None:
    bad = [dict(rows[0]), dict(rows[1], age="old")]
    merged = columns_of([*rows[:3], *bad])
    first, second = predictor_runner(predictor, "m@1")(merged, [3, 2])
    assert isinstance(first, Prediction) and len(first.predictions) == 3
    assert isinstance(second, SchemaError)
    [violation] = second.report.violations
    assert (violation.column, violation.rows) == ("age", [1])


def test_outputs_that_are_not_probabilities_are_withheld() -> None:
    classes = [0, 1]
    sound = Prediction(np.array([0]), np.array([[0.7, 0.3]]), classes)
    assert check_output(sound) is None
    for bad in ([[np.nan, 1.0]], [[1.5, -0.5]], [[0.7, 0.7]]):
        assert check_output(Prediction(np.array([0]), np.array(bad), classes)) is not None
    assert check_output(Prediction(np.array([np.inf]), None, [])) is not None


def test_the_runner_turns_a_bad_output_into_invalid_output(
    predictor: Predictor, rows: list[dict[str, Any]]
) -> None:
    class Broken:
        def scores(self, matrix: Any) -> Any:
            return np.full((len(matrix), 2), np.nan)

    broken = Predictor(
        predictor.schema, predictor.wrangler, Broken(), predictor.task, predictor.classes
    )
    [answer] = predictor_runner(broken, "m@1")(columns_of(rows[:2]), [2])
    assert isinstance(answer, InvalidOutput)


def test_split_by_row_counts() -> None:
    prediction = Prediction(np.arange(5), np.tile([[0.5, 0.5]], (5, 1)), [0, 1])
    parts = split(prediction, [2, 3])
    assert [p.predictions.tolist() for p in parts if isinstance(p, Prediction)] == [
        [0, 1],
        [2, 3, 4],
    ]


def test_pii_columns_are_hashed_with_a_pepper_or_dropped(predictor: Predictor) -> None:
    schema = predictor.schema
    pii = [name for name, column in schema.columns.items() if column.pii]
    assert pii, "the demo schema has a PII column"
    columns = {pii[0]: ["a@example.com", None], "age": [30, 40]}
    hashed = Redactor("hash", "pepper").columns(schema, columns)
    assert hashed["age"] == [30, 40]
    # HMAC-SHA256 keyed by the pepper, cut to 32 hex digits: the documented, stable rule
    expected = hmac.new(b"pepper", b"a@example.com", hashlib.sha256).hexdigest()[:32]
    assert hashed[pii[0]][0] == expected
    assert hashed[pii[0]][1] is None
    assert pii[0] not in Redactor("hash", None).columns(schema, columns)
    assert pii[0] not in Redactor("drop", "pepper").columns(schema, columns)
