"""The lines a worker sends its log process build the rows its own writer would have built."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from atoll.model.predictor import Prediction
from atoll.schema import Column, Schema
from atoll.serve.logframes import Answered, encode, frame_seq, parse
from atoll.types import ColumnType

SCHEMA = Schema(columns={"x": Column(type=ColumnType.FLOAT)}, target="y")


def answered(columns: dict[str, Any], prediction: Prediction, ids: list[str]) -> Answered:
    return Answered(
        model="credit-risk",
        version=7,
        role="primary",
        schema=SCHEMA,
        columns=columns,
        prediction=prediction,
        ids=ids,
        request_id="req-1",
        latency_ms=1.25,
        key_id="0123456789ab",
    )


CASES: dict[str, tuple[dict[str, Any], Prediction]] = {
    "one row, classes as ints": (
        {"age": [41], "income": [52000.5], "city": ["Lyon"], "missing": [None], "ok": [True]},
        Prediction(np.array([1]), np.array([[0.25, 0.75]]), [0, 1]),
    ),
    "float32 probabilities and string labels": (
        {"x": [0.1, 2.0, -3.5]},
        Prediction(
            np.array(["no", "yes", "no"]),
            np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]], dtype=np.float32),
            ["no", "yes"],
        ),
    ),
    "regression in float32, NaN and infinity in the inputs": (
        {"x": [math.nan, math.inf, 1e300], "n": [2**62, -1, 0]},
        Prediction(np.array([0.1, 1.5, -2.25], dtype=np.float32), None, []),
    ),
    "datetimes, Python and numpy (NaT included)": (
        {
            "when": [datetime(2026, 5, 16, 12, 0, tzinfo=UTC), None],
            "stamp": np.array(["2026-05-16T12:00:00", "NaT"], dtype="datetime64[ns]"),
            "frac": np.array(["2026-05-16T12:00:00.5", "2026-05-16"], dtype="datetime64[us]"),
        },
        Prediction(np.array([True, False]), np.array([[0.5, 0.5], [1.0, 0.0]]), [False, True]),
    ),
    "a non-contiguous probability slice": (
        {"x": [1.0, 2.0]},
        Prediction(
            np.array([2, 0]), np.arange(12, dtype=np.float64).reshape(2, 6)[:, ::2], [0, 1, 2]
        ),
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_line_builds_the_rows_the_in_process_writer_builds(case: str) -> None:
    columns, prediction = CASES[case]
    n_rows = len(prediction.predictions)
    ids = [f"p{i:035d}" for i in range(n_rows)]
    answer = answered(columns, prediction, ids)
    at = time.time()
    line = encode(5, answer, at, columns)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    frame = parse(line)
    assert (frame.seq, frame.count) == (5, n_rows)
    assert frame.build() == answer.log_rows(at, columns)


def test_a_value_json_cannot_hold_is_refused_when_encoded() -> None:
    prediction = Prediction(np.array([1]), None, [])
    with pytest.raises(ValueError, match="answer"):
        encode(0, answered({"x": [object()]}, prediction, ["p1"]), time.time(), {"x": [object()]})


@pytest.mark.parametrize(
    "line",
    [
        b"not json\n",
        b'{"seq": 1}\n',
        b"[1, 2, 3]\n",
        b'[1,"m",1,"primary","r",1.0,1.0,null,"ids",{},[],null,[]]\n',
    ],
    ids=["not json", "an object", "too few fields", "ids not a list"],
)
def test_a_line_that_is_not_a_frame_is_refused(line: bytes) -> None:
    with pytest.raises(ValueError, match="not a prediction log frame"):
        parse(line)


def test_a_frame_with_a_bad_field_fails_when_its_rows_are_built() -> None:
    prediction = Prediction(np.array([1]), None, [])
    line = encode(0, answered({"x": [1.0]}, prediction, ["p1"]), time.time(), {"x": [1.0]})
    bad = line.replace(b'"primary"', b'"nobody"')
    frame = parse(bad)
    with pytest.raises(ValueError, match="role"):
        frame.build()


def test_the_sequence_number_is_read_from_a_torn_line() -> None:
    prediction = Prediction(np.array([1]), None, [])
    line = encode(42, answered({"x": [1.0]}, prediction, ["p1"]), time.time(), {"x": [1.0]})
    assert frame_seq(line[:20]) == 42
    assert frame_seq(b"garbage") == 0
