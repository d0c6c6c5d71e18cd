"""Validation of a column mapping (what the HTTP codecs decode), and its agreement with
records and frames: the same data gives the same report, rows and canonical frame."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atoll.errors import DataError, SchemaError
from atoll.schema import Column, Schema, Validated
from atoll.types import ColumnType, Role
from tests.core.test_schema import good_records, make_schema


def as_columns(records: list[dict[str, Any]]) -> dict[str, list[Any]]:
    names = list(dict.fromkeys(key for record in records for key in record))
    return {name: [record.get(name) for record in records] for name in names}


def assert_same(left: Validated, right: Validated) -> None:
    assert left.report.to_dict() == right.report.to_dict()
    assert left.invalid_rows.tolist() == right.invalid_rows.tolist()
    pd.testing.assert_frame_equal(left.frame, right.frame, check_exact=True)
    for name in left.frame.columns:  # text cells are the very same Python types
        if left.frame[name].dtype == object:
            assert [type(v) for v in left.frame[name]] == [type(v) for v in right.frame[name]]


# --- the columns form ------------------------------------------------------------------


def test_columns_give_the_same_result_as_records_and_frames() -> None:
    schema = make_schema()
    records = good_records()
    columns = as_columns(records)
    from_columns = schema.validate(columns, "train")
    assert from_columns.report.ok, from_columns.report.summary()
    assert_same(from_columns, schema.validate(records, "train"))
    assert_same(from_columns, schema.validate(pd.DataFrame(columns), "train"))


def test_columns_name_the_same_violations_and_rows() -> None:
    schema = make_schema()
    records = good_records()
    records[0]["age"] = 10
    records[1]["term"] = "48"
    records[2]["income"] = float("inf")
    records[2]["owner"] = "yes"
    records[1]["applied"] = "31/12/2024"
    records[0]["colour"] = "red"
    result = schema.validate(as_columns(records), "predict")
    assert {(v.column, v.rule, tuple(v.rows)) for v in result.report.violations} == {
        ("age", "min", (0,)),
        ("term", "unknown_category", (1,)),
        ("income", "not_finite", (2,)),
        ("owner", "type", (2,)),
        ("applied", "type", (1,)),
        ("colour", "unexpected_column", ()),
    }
    assert result.invalid_rows.tolist() == [True, True, True]
    assert_same(result, schema.validate(records, "predict"))


def test_columns_of_numpy_arrays() -> None:
    schema = make_schema()
    columns: dict[str, Any] = {
        "id": np.array(["a1", "a2"], dtype=object),
        "age": np.array([30, 45], dtype=np.int64),
        "income": np.array([1.5, np.nan]),
        "owner": np.array([True, False]),
        "term": np.array([36, 60]),
        "purpose": np.array(["car", "boat"]),  # numpy text, read as text
        "applied": np.array(["2024-01-02", "NaT"], dtype="datetime64[ns]"),
        "note": [None, "x"],
        "y": (0, 1),  # any sequence
    }
    result = schema.validate(columns, "train")
    assert result.report.ok, result.report.summary()
    assert result.frame["term"].tolist() == ["36", "60"]
    assert result.frame["purpose"].tolist() == ["car", "boat"]
    assert result.frame["owner"].tolist() == [1.0, 0.0]
    assert result.frame["applied"].dtype == np.dtype("datetime64[ns]")


def test_arrays_keep_their_dtype_as_in_a_frame() -> None:
    target = Column(type=ColumnType.INT, role=Role.TARGET)
    schema = Schema({"x": Column(type=ColumnType.FLOAT), "t": target}, "t")
    for values in ([True, False], np.array([True, False], dtype=object), np.array([1, None])):
        assert_same(
            schema.validate({"x": values}, "predict"),
            schema.validate(pd.DataFrame({"x": values}), "predict"),
        )
    # true/false is not a number, however it is typed
    assert not schema.validate({"x": [True]}, "predict").report.ok
    assert not schema.validate({"x": np.array([True], dtype=object)}, "predict").report.ok


def test_columns_are_not_modified() -> None:
    columns = as_columns(good_records())
    before = {name: list(values) for name, values in columns.items()}
    make_schema().validate(columns, "train")
    assert columns == before


def test_empty_columns() -> None:
    result = make_schema().validate({}, "predict")
    assert result.report.n_rows == 0
    assert {v.rule for v in result.report.violations} == {"missing_column"}
    assert len(result.frame) == 0


def test_columns_of_different_lengths_are_a_data_error() -> None:
    columns = as_columns(good_records())
    columns["income"] = columns["income"][:2]
    with pytest.raises(DataError, match=r"different lengths: 'id' has 3 values, 'income' has 2"):
        make_schema().validate(columns, "predict")
    with pytest.raises(DataError) as info:
        make_schema().check(columns, "predict")
    assert info.value.context["column"] == "income"


@pytest.mark.parametrize("value", [30, "thirty", None, {"a": 1}, np.zeros((2, 2))])
def test_a_column_that_is_not_a_list_is_a_data_error(value: Any) -> None:
    columns = as_columns(good_records())
    columns["age"] = value
    with pytest.raises(DataError, match="column 'age' must be a list of values, one per row"):
        make_schema().validate(columns, "predict")


def test_check_with_columns() -> None:
    schema = make_schema()
    columns = as_columns(good_records())
    frame = schema.check(columns, "train")
    pd.testing.assert_frame_equal(frame, schema.validate(good_records(), "train").frame)
    columns["age"][1] = 5
    with pytest.raises(SchemaError, match="age: min"):
        schema.check(columns, "train")


def test_validated_columns_hold_the_frame_values() -> None:
    result = make_schema().validate(as_columns(good_records()), "train")
    assert list(result.columns) == list(result.frame.columns)
    for name, values in result.columns.items():
        assert isinstance(values, np.ndarray)
        np.testing.assert_array_equal(values, result.frame[name].to_numpy())
    assert result.frame is result.frame  # built once


# --- small and large inputs take different routes to the same answer ---------------------

PLAIN_DATES = [
    "2024-01-02",
    "2024-01-02 03:04",
    "2024-01-02T03:04:05.25",
    "2024-06-30T23:59:59Z",
    "2024-02-30",  # no such day
    "2024-01-01T24:00",
    None,
    float("nan"),
    7,
    True,
]
OTHER_DATES = ["2024-01-01T05:00:00+02:00", "01/02/2024", "", "yesterday", "2024-01-02"]
DATES = Schema({"d": Column(type=ColumnType.DATETIME)}, "d")


@pytest.mark.parametrize("values", [PLAIN_DATES, OTHER_DATES, PLAIN_DATES + OTHER_DATES])
def test_dates_parse_the_same_in_small_and_large_columns(values: list[Any]) -> None:
    small = DATES.validate({"d": values}, "train")
    large = DATES.validate({"d": values * 20}, "train")
    assert small.frame["d"].tolist() == large.frame["d"].tolist()[: len(values)]
    assert small.invalid_rows.tolist() * 20 == large.invalid_rows.tolist()
    as_frame = DATES.validate(pd.DataFrame({"d": pd.Series(values, dtype=object)}), "train")
    assert_same(small, as_frame)


def test_plain_dates() -> None:
    result = DATES.validate({"d": PLAIN_DATES}, "train")
    assert result.frame["d"].tolist()[:4] == [
        pd.Timestamp("2024-01-02"),
        pd.Timestamp("2024-01-02 03:04"),
        pd.Timestamp("2024-01-02 03:04:05.25"),
        pd.Timestamp("2024-06-30 23:59:59"),
    ]
    assert result.report.violations[0].rows == [4, 5, 8, 9]


def test_a_date_beyond_nanoseconds_gives_the_same_answer_as_a_frame() -> None:
    values = ["3000-01-01T00:00:00", "2024-01-01"]
    outcomes = []
    for data in ({"d": values}, pd.DataFrame({"d": pd.Series(values, dtype=object)})):
        try:
            outcomes.append(DATES.validate(data, "train").report.to_dict())
        except Exception as error:  # whatever pandas does, both inputs do the same
            outcomes.append(type(error).__name__)
    assert outcomes[0] == outcomes[1]


# --- property: every input form agrees ---------------------------------------------------

PLAIN = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["a", "b", "36", "60", "car", "", "2024-01-02", "2024-01-02T03:04:05Z", "x"]),
    st.sampled_from([dt.datetime(2024, 5, 6, 7, 8), dt.date(2024, 1, 1), [1], {"k": 1}]),
)
TYPES = st.sampled_from(list(ColumnType))


@st.composite
def cases(draw: st.DrawFn) -> tuple[Schema, dict[str, list[Any]]]:
    n_rows = draw(st.sampled_from([0, 1, 2, 5, 70]))
    names = [f"c{i}" for i in range(draw(st.integers(1, 3)))]
    columns: dict[str, Column] = {}
    data: dict[str, list[Any]] = {}
    for name in names:
        kind = draw(TYPES)
        allowed = (
            ["a", "36", "car"] if kind is ColumnType.CATEGORY and draw(st.booleans()) else None
        )
        bounds = {"min": 0.0, "max": 100.0} if kind.is_numeric and draw(st.booleans()) else {}
        columns[name] = Column(type=kind, nullable=draw(st.booleans()), allowed=allowed, **bounds)
        pool = draw(st.lists(PLAIN, min_size=1, max_size=4))
        data[name] = [draw(st.sampled_from(pool)) for _ in range(n_rows)]
    columns["t"] = Column(type=ColumnType.INT, role=Role.TARGET)
    return Schema(columns, "t"), data


def _outcome(schema: Schema, data: Any) -> Validated | str:
    try:
        return schema.validate(data, "predict")
    except Exception as error:  # pandas refuses some values outright; all forms must agree
        return type(error).__name__


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_columns_records_and_frames_agree(case: tuple[Schema, dict[str, list[Any]]]) -> None:
    schema, data = case
    n_rows = len(next(iter(data.values())))
    records = [{name: values[i] for name, values in data.items()} for i in range(n_rows)]
    reference = _outcome(schema, pd.DataFrame(data))  # pandas types the lists
    for form in (data, records) if n_rows else (data,):  # no records, no columns
        outcome = _outcome(schema, form)
        if isinstance(reference, str) or isinstance(outcome, str):
            assert outcome == reference
        else:
            assert_same(outcome, reference)
