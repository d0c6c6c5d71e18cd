"""The column schema and its validation engine: every rule, every safe cast, one layout."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import pytest

from atoll.errors import SchemaError
from atoll.schema import MAX_EXAMPLE_ROWS, Column, Schema, ValidationReport, Violation
from atoll.types import ColumnType, Role

PURPOSES = ["car", "medical", "other"]


def make_schema() -> Schema:
    return Schema(
        {
            "id": Column(type=ColumnType.STRING, role=Role.ID, nullable=False),
            "age": Column(type=ColumnType.INT, min=18, max=120, nullable=False),
            "income": Column(type=ColumnType.FLOAT, min=0),
            "owner": Column(type=ColumnType.BOOL),
            "term": Column(type=ColumnType.CATEGORY, allowed=["36", "60"]),
            "purpose": Column(type=ColumnType.CATEGORY, allowed=PURPOSES, unknown="allow"),
            "applied": Column(type=ColumnType.DATETIME),
            "note": Column(type=ColumnType.STRING),
            "y": Column(type=ColumnType.INT, role=Role.TARGET, nullable=False),
        },
        target="y",
    )


def good_records() -> list[dict[str, Any]]:
    return [
        {
            "id": "a1",
            "age": 30,
            "income": 52000.5,
            "owner": True,
            "term": "36",
            "purpose": "car",
            "applied": "2024-01-02T03:04:05",
            "note": "first",
            "y": 0,
        },
        {
            "id": "a2",
            "age": 45,
            "income": 0.0,
            "owner": False,
            "term": "60",
            "purpose": "boat",  # unknown, but the column allows it
            "applied": "2024-02-29",
            "note": None,
            "y": 1,
        },
        {
            "id": "a3",
            "age": 120,
            "income": None,
            "owner": None,
            "term": None,
            "purpose": None,
            "applied": None,
            "note": "third",
            "y": 1,
        },
    ]


def good_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["a1", "a2", "a3"],
            "age": np.array([30, 45, 120], dtype=np.int64),
            "income": [52000.5, 0.0, np.nan],
            "owner": pd.array([True, False, None], dtype="boolean"),
            "term": [36, 60, None],  # integers: cast to category text
            "purpose": ["car", "boat", None],
            "applied": pd.to_datetime(
                ["2024-01-02T03:04:05", "2024-02-29", None], format="ISO8601"
            ),
            "note": ["first", None, "third"],
            "y": [0, 1, 1],
        }
    )


def rules(report: ValidationReport) -> set[tuple[str, str]]:
    return {(v.column, v.rule) for v in report.violations}


def violation(report: ValidationReport, column: str, rule: str) -> Violation:
    found = [v for v in report.violations if v.column == column and v.rule == rule]
    assert len(found) == 1, report.summary()
    return found[0]


def one_column(column: Column, values: Any, name: str = "x") -> Any:
    """Validate a single feature column (plus nothing else) in predict mode."""
    schema = Schema({name: column, "t": Column(type=ColumnType.INT, role=Role.TARGET)}, "t")
    data = values if isinstance(values, pd.DataFrame) else pd.DataFrame({name: values})
    return schema.validate(data, "predict")


# --- the good path and the canonical layout -----------------------------------------


def test_good_records_have_no_violations() -> None:
    result = make_schema().validate(good_records(), "train")
    assert result.report.ok, result.report.summary()
    assert result.report.violations == []
    assert result.report.n_rows == 3
    assert result.report.n_invalid_rows == 0
    assert result.invalid_rows.dtype == bool
    assert result.invalid_rows.tolist() == [False, False, False]
    assert result.report.summary() == "3 rows, no violations"


def test_canonical_dtypes() -> None:
    frame = make_schema().validate(good_records(), "train").frame
    assert list(frame.columns) == list(make_schema().columns)
    for name in ("age", "income", "owner", "y"):
        assert frame[name].dtype == np.float64, name
    for name in ("id", "term", "purpose", "note"):
        assert frame[name].dtype == object, name
    assert frame["applied"].dtype == np.dtype("datetime64[ns]")
    assert isinstance(frame.index, pd.RangeIndex)


def test_canonical_values() -> None:
    frame = make_schema().validate(good_records(), "train").frame
    assert frame["age"].tolist() == [30.0, 45.0, 120.0]
    assert frame["owner"].iloc[0] == 1.0
    assert frame["owner"].iloc[1] == 0.0
    assert np.isnan(frame["owner"].iloc[2])
    assert np.isnan(frame["income"].iloc[2])
    assert frame["term"].tolist() == ["36", "60", None]
    assert frame["note"].tolist() == ["first", None, "third"]
    assert frame["purpose"].tolist() == ["car", "boat", None]
    assert frame["applied"].iloc[0] == pd.Timestamp("2024-01-02 03:04:05")
    assert frame["applied"].iloc[1] == pd.Timestamp("2024-02-29")
    assert pd.isna(frame["applied"].iloc[2])


def test_records_and_frames_give_the_same_canonical_frame() -> None:
    schema = make_schema()
    from_records = schema.validate(good_records(), "train")
    from_frame = schema.validate(good_frame(), "train")
    from_dict_frame = schema.validate(pd.DataFrame(good_records()), "train")
    assert from_records.report.ok
    assert from_frame.report.ok, from_frame.report.summary()
    pd.testing.assert_frame_equal(from_records.frame, from_frame.frame)
    pd.testing.assert_frame_equal(from_records.frame, from_dict_frame.frame)


def test_string_dtype_input_is_the_same_as_object_input() -> None:
    schema = make_schema()
    frame = good_frame()
    as_strings = frame.copy()
    for name in ("id", "purpose", "note"):
        as_strings[name] = frame[name].astype("string")
    left = schema.validate(frame, "train")
    right = schema.validate(as_strings, "train")
    assert right.report.ok, right.report.summary()
    pd.testing.assert_frame_equal(left.frame, right.frame)


def test_column_order_of_the_input_does_not_matter() -> None:
    schema = make_schema()
    frame = good_frame()
    shuffled = frame[list(reversed(frame.columns))]
    pd.testing.assert_frame_equal(
        schema.validate(frame, "train").frame, schema.validate(shuffled, "train").frame
    )


def test_non_default_index_is_reset_and_positions_are_0_based() -> None:
    frame = good_frame()
    frame.index = pd.Index([100, 7, 55])
    frame.loc[55, "age"] = 5
    result = make_schema().validate(frame, "train")
    assert isinstance(result.frame.index, pd.RangeIndex)
    assert result.frame["id"].tolist() == ["a1", "a2", "a3"]
    assert violation(result.report, "age", "min").rows == [2]
    assert result.invalid_rows.tolist() == [False, False, True]


def test_validate_does_not_modify_its_input() -> None:
    frame = good_frame()
    before = frame.copy()
    make_schema().validate(frame, "train")
    pd.testing.assert_frame_equal(frame, before)


# --- column set: train vs predict ---------------------------------------------------


def test_train_requires_every_column() -> None:
    records = [{k: v for k, v in r.items() if k not in ("y", "id")} for r in good_records()]
    report = make_schema().validate(records, "train").report
    assert rules(report) == {("y", "missing_column"), ("id", "missing_column")}
    missing = violation(report, "y", "missing_column")
    assert missing.count == 3
    assert missing.rows == []
    assert report.n_invalid_rows == 0  # a missing column is not a row problem


def test_predict_requires_only_features() -> None:
    schema = make_schema()
    records = [{k: r[k] for k in schema.features} for r in good_records()]
    result = schema.validate(records, "predict")
    assert result.report.ok, result.report.summary()
    assert list(result.frame.columns) == schema.features


def test_predict_allows_optional_columns_and_the_target() -> None:
    result = make_schema().validate(good_records(), "predict")
    assert result.report.ok, result.report.summary()
    assert "y" in result.frame.columns
    assert "id" in result.frame.columns


def test_predict_still_requires_every_feature() -> None:
    records = [{k: v for k, v in r.items() if k != "income"} for r in good_records()]
    report = make_schema().validate(records, "predict").report
    assert rules(report) == {("income", "missing_column")}
    assert "income: missing_column" in report.summary()


def test_unexpected_columns_are_reported_and_dropped() -> None:
    records = [{**r, "colour": "red"} for r in good_records()]
    for mode in ("train", "predict"):
        result = make_schema().validate(records, mode)
        assert rules(result.report) == {("colour", "unexpected_column")}
        assert violation(result.report, "colour", "unexpected_column").rows == []
        assert "colour" not in result.frame.columns
        assert result.report.n_invalid_rows == 0


def test_features_and_inputs() -> None:
    schema = make_schema()
    assert schema.features == ["age", "income", "owner", "term", "purpose", "applied", "note"]
    assert schema.inputs == [n for n in schema.columns if n != "y"]


def test_empty_records() -> None:
    result = make_schema().validate([], "predict")
    assert result.report.n_rows == 0
    assert {rule for _, rule in rules(result.report)} == {"missing_column"}
    assert len(result.frame) == 0


# --- type -----------------------------------------------------------------------------


def test_strings_in_a_numeric_column() -> None:
    result = one_column(
        Column(type=ColumnType.FLOAT), pd.Series([1.5, "2", "x", None], dtype=object)
    )
    bad = violation(result.report, "x", "type")
    assert bad.count == 2
    assert bad.rows == [1, 2]
    assert bad.message == "values are not of type float"
    assert result.invalid_rows.tolist() == [False, True, True, False]
    assert result.frame["x"].iloc[0] == 1.5
    assert result.frame["x"].dtype == np.float64


def test_all_string_numeric_column() -> None:
    result = one_column(Column(type=ColumnType.INT), ["1", "2", "3"])
    assert violation(result.report, "x", "type").count == 3


def test_fractional_floats_in_an_int_column() -> None:
    result = one_column(Column(type=ColumnType.INT), [1.0, 2.5, np.nan, -3.0, 0.1])
    bad = violation(result.report, "x", "type")
    assert bad.rows == [1, 4]
    assert bad.message == "values are not of type int"
    values = result.frame["x"]
    assert values.iloc[0] == 1.0
    assert values.iloc[3] == -3.0
    assert np.isnan(values.iloc[1])  # the refused value is not kept


def test_integral_floats_in_an_int_column_are_fine() -> None:
    result = one_column(Column(type=ColumnType.INT), [1.0, 2.0, np.nan])
    assert result.report.ok


def test_fractional_object_floats_in_an_int_column() -> None:
    result = one_column(Column(type=ColumnType.INT), pd.Series([1, 2.5, None], dtype=object))
    assert violation(result.report, "x", "type").rows == [1]


@pytest.mark.parametrize("kind", [ColumnType.INT, ColumnType.FLOAT])
def test_bools_in_a_numeric_column(kind: ColumnType) -> None:
    records = [{"x": 3}, {"x": True}, {"x": False}, {"x": None}]
    result = one_column(Column(type=kind), pd.DataFrame(records))
    bad = violation(result.report, "x", "type")
    assert bad.rows == [1, 2]
    assert bad.count == 2


def test_non_iso_strings_in_a_datetime_column() -> None:
    values = ["2024-01-02", "01/02/2024", "yesterday", None, "2024-13-01", "2024-03-04T05:06:07Z"]
    result = one_column(Column(type=ColumnType.DATETIME), values)
    bad = violation(result.report, "x", "type")
    assert bad.rows == [1, 2, 4]
    assert bad.message == "values are not of type datetime"
    assert result.frame["x"].dtype == np.dtype("datetime64[ns]")
    assert result.frame["x"].iloc[5] == pd.Timestamp("2024-03-04 05:06:07")


def test_numbers_in_a_datetime_column_are_refused() -> None:
    values = pd.Series([1_700_000_000, "2024-01-01", 1.5, True, None], dtype=object)
    result = one_column(Column(type=ColumnType.DATETIME), values)
    assert violation(result.report, "x", "type").rows == [0, 2, 3]


def test_numeric_dtype_in_a_datetime_column_is_refused() -> None:
    result = one_column(Column(type=ColumnType.DATETIME), [1, 2])
    assert violation(result.report, "x", "type").count == 2
    assert result.frame["x"].dtype == np.dtype("datetime64[ns]")


@pytest.mark.parametrize("kind", [ColumnType.CATEGORY, ColumnType.STRING])
def test_non_string_objects_in_a_text_column(kind: ColumnType) -> None:
    values = pd.Series(["a", 1.5, True, {"k": 1}, [1], None, 7], dtype=object)
    result = one_column(Column(type=kind), values)
    bad = violation(result.report, "x", "type")
    assert bad.rows == [1, 2, 3, 4]
    assert result.frame["x"].tolist() == ["a", None, None, None, None, None, "7"]


def test_fractional_floats_in_a_category_column() -> None:
    result = one_column(Column(type=ColumnType.CATEGORY), [36.0, 60.5, np.nan])
    assert violation(result.report, "x", "type").rows == [1]
    assert result.frame["x"].tolist() == ["36", None, None]


def test_bool_column() -> None:
    result = one_column(Column(type=ColumnType.BOOL), [0, 1, 2, -1, None])
    assert violation(result.report, "x", "type").rows == [2, 3]
    assert result.frame["x"].iloc[:2].tolist() == [0.0, 1.0]


def test_bool_column_from_json_records_with_nulls() -> None:
    records = [{"x": True}, {"x": False}, {"x": None}, {"x": "yes"}]
    result = one_column(Column(type=ColumnType.BOOL), pd.DataFrame(records))
    assert violation(result.report, "x", "type").rows == [3]
    values = result.frame["x"]
    assert values.iloc[0] == 1.0
    assert values.iloc[1] == 0.0
    assert np.isnan(values.iloc[2])


def test_nullable_extension_dtypes() -> None:
    schema = Schema(
        {
            "i": Column(type=ColumnType.INT),
            "b": Column(type=ColumnType.BOOL),
            "f": Column(type=ColumnType.FLOAT),
            "t": Column(type=ColumnType.INT, role=Role.TARGET),
        },
        "t",
    )
    frame = pd.DataFrame(
        {
            "i": pd.array([1, None, 3], dtype="Int64"),
            "b": pd.array([True, None, False], dtype="boolean"),
            "f": pd.array([0.5, None, 2.0], dtype="Float64"),
        }
    )
    result = schema.validate(frame, "predict")
    assert result.report.ok, result.report.summary()
    assert all(result.frame[c].dtype == np.float64 for c in "ibf")
    assert result.frame["i"].isna().tolist() == [False, True, False]
    assert result.frame["b"].tolist()[::2] == [1.0, 0.0]


# --- null, not_finite, min, max ------------------------------------------------------


def test_null_in_a_non_nullable_column() -> None:
    result = one_column(Column(type=ColumnType.FLOAT, nullable=False), [1.0, None, np.nan, 4.0])
    bad = violation(result.report, "x", "null")
    assert bad.rows == [1, 2]
    assert bad.message == "null values in a non-nullable column"


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        (ColumnType.CATEGORY, ["a", None]),
        (ColumnType.STRING, ["a", None]),
        (ColumnType.DATETIME, ["2024-01-01", None]),
        (ColumnType.BOOL, [True, None]),
    ],
)
def test_null_rule_for_every_type(kind: ColumnType, values: list[Any]) -> None:
    result = one_column(Column(type=kind, nullable=False), pd.Series(values, dtype=object))
    assert rules(result.report) == {("x", "null")}
    assert violation(result.report, "x", "null").rows == [1]


def test_nulls_are_fine_in_a_nullable_column() -> None:
    assert one_column(Column(type=ColumnType.FLOAT), [None, np.nan]).report.ok


def test_infinite_values() -> None:
    result = one_column(Column(type=ColumnType.FLOAT), [1.0, np.inf, -np.inf, np.nan])
    bad = violation(result.report, "x", "not_finite")
    assert bad.rows == [1, 2]
    assert bad.count == 2
    assert bad.message == "infinite values"


def test_min_and_max() -> None:
    column = Column(type=ColumnType.FLOAT, min=0, max=10)
    result = one_column(column, [-0.5, 0.0, 10.0, 10.5, np.nan, -3.0])
    low = violation(result.report, "x", "min")
    high = violation(result.report, "x", "max")
    assert low.rows == [0, 5]
    assert low.message == "values below min 0"
    assert high.rows == [3]
    assert high.message == "values above max 10"
    assert result.invalid_rows.tolist() == [True, False, False, True, False, True]


def test_bounds_apply_to_int_and_bool_columns() -> None:
    result = one_column(Column(type=ColumnType.INT, min=18), [17, 18, 65])
    assert violation(result.report, "x", "min").rows == [0]
    result = one_column(Column(type=ColumnType.BOOL, max=0), [True, False])
    assert violation(result.report, "x", "max").rows == [0]


# --- categories -----------------------------------------------------------------------


def test_unknown_category_is_an_error_by_default() -> None:
    result = one_column(Column(type=ColumnType.CATEGORY, allowed=["a", "b"]), ["a", "c", None, "B"])
    bad = violation(result.report, "x", "unknown_category")
    assert bad.rows == [1, 3]
    assert bad.message == "values outside the allowed categories"


def test_unknown_category_allowed_by_policy() -> None:
    column = Column(type=ColumnType.CATEGORY, allowed=["a", "b"], unknown="allow")
    result = one_column(column, ["a", "c", None])
    assert result.report.ok
    assert result.frame["x"].tolist() == ["a", "c", None]


def test_integer_categories_become_their_text() -> None:
    column = Column(type=ColumnType.CATEGORY, allowed=["36", "60"])
    for values in ([36, 60], pd.array([36, None], dtype="Int64"), [36.0, np.nan]):
        result = one_column(column, values)
        assert result.report.ok, result.report.summary()
        assert result.frame["x"].iloc[0] == "36"
        assert isinstance(result.frame["x"].iloc[0], str)
    assert one_column(column, [36, 48]).report.violations[0].rule == "unknown_category"


# --- safe casts -----------------------------------------------------------------------


def test_int_to_float() -> None:
    result = one_column(Column(type=ColumnType.FLOAT), np.array([1, 2, 3], dtype=np.int32))
    assert result.report.ok
    assert result.frame["x"].dtype == np.float64
    assert result.frame["x"].tolist() == [1.0, 2.0, 3.0]


def test_iso_strings_to_datetime_including_offsets() -> None:
    values = ["2024-01-01T05:00:00+02:00", "2024-01-01", "2024-06-30T23:59:59.5Z"]
    result = one_column(Column(type=ColumnType.DATETIME), values)
    assert result.report.ok, result.report.summary()
    assert result.frame["x"].tolist() == [
        pd.Timestamp("2024-01-01 03:00:00"),
        pd.Timestamp("2024-01-01"),
        pd.Timestamp("2024-06-30 23:59:59.5"),
    ]


def test_tz_aware_datetimes_become_naive_utc() -> None:
    aware = pd.Series(pd.to_datetime(["2024-01-01 05:00"]).tz_localize("Europe/Berlin"))
    result = one_column(Column(type=ColumnType.DATETIME), aware)
    assert result.report.ok
    assert result.frame["x"].dtype == np.dtype("datetime64[ns]")
    assert result.frame["x"].iloc[0] == pd.Timestamp("2024-01-01 04:00")


def test_datetime_resolution_becomes_ns() -> None:
    values = np.array(["2024-01-01T00:00:01", "NaT"], dtype="datetime64[s]")
    result = one_column(Column(type=ColumnType.DATETIME), values)
    assert result.report.ok
    assert result.frame["x"].dtype == np.dtype("datetime64[ns]")
    assert result.frame["x"].iloc[0] == pd.Timestamp("2024-01-01 00:00:01")


@pytest.mark.parametrize("zone", [None, "UTC", "Asia/Tokyo"])
def test_datetimes_nanoseconds_cannot_hold_are_refused_by_row(zone: str | None) -> None:
    """Parquet keeps microseconds: year 1 or 3000 is a bad row, not pandas' exception."""
    stamps = np.array(["0001-01-01", "2024-01-01T00:00:01", "3000-01-01", "NaT"], "M8[us]")
    values = pd.Series(stamps) if zone is None else pd.Series(stamps).dt.tz_localize(zone)
    result = one_column(Column(type=ColumnType.DATETIME), values)
    assert violation(result.report, "x", "type").rows == [0, 2]
    column = result.columns["x"]
    assert column.dtype == np.dtype("datetime64[ns]")
    assert np.isnat(column).tolist() == [True, False, True, True]
    assert result.invalid_rows.tolist() == [True, False, True, False]


def test_python_datetimes_in_an_object_column() -> None:
    values = pd.Series([dt.datetime(2024, 5, 6, 7, 8), "2024-05-07", None], dtype=object)
    result = one_column(Column(type=ColumnType.DATETIME), values)
    assert result.report.ok, result.report.summary()
    assert result.frame["x"].iloc[0] == pd.Timestamp("2024-05-06 07:08")


# --- report: positions, counts, invalid rows -----------------------------------------


def test_report_keeps_the_first_five_positions_and_the_full_count() -> None:
    values = [1.0] * 3 + [-1.0] * 8 + [1.0] * 4 + [-2.0]
    result = one_column(Column(type=ColumnType.FLOAT, min=0), values)
    bad = violation(result.report, "x", "min")
    assert MAX_EXAMPLE_ROWS == 5
    assert bad.count == 9
    assert bad.rows == [3, 4, 5, 6, 7]
    assert "9 rows: 3, 4, 5, 6, 7, ..." in result.report.summary()


def test_report_without_ellipsis_when_all_rows_are_listed() -> None:
    result = one_column(Column(type=ColumnType.FLOAT, min=0), [-1.0, 2.0, -3.0])
    assert "(2 rows: 0, 2)" in result.report.summary()
    assert "..." not in result.report.summary()


def test_invalid_rows_count_rows_not_violations() -> None:
    schema = make_schema()
    records = good_records()
    records[0]["age"] = 10  # min
    records[0]["term"] = "48"  # unknown_category, same row
    records[2]["income"] = -5.0  # min
    result = schema.validate(records, "train")
    assert len(result.report.violations) == 3
    assert result.report.n_invalid_rows == 2
    assert result.invalid_rows.tolist() == [True, False, True]
    assert result.report.summary().startswith("3 rows, 2 invalid, 3 violations:")
    # the canonical frame keeps every row, even invalid ones
    assert len(result.frame) == 3


def test_summary_names_column_and_rule() -> None:
    records = good_records()
    records[1]["age"] = 130
    summary = make_schema().validate(records, "train").report.summary()
    assert "age: max: values above max 120 (1 rows: 1)" in summary


def test_report_to_dict() -> None:
    records = good_records()
    records[1]["age"] = 130
    report = make_schema().validate(records, "train").report
    assert report.to_dict() == {
        "ok": False,
        "n_rows": 3,
        "n_invalid_rows": 1,
        "violations": [
            {
                "rule": "max",
                "column": "age",
                "count": 1,
                "rows": [1],
                "message": "values above max 120",
            }
        ],
    }


# --- check ------------------------------------------------------------------------------


def test_check_returns_the_canonical_frame() -> None:
    schema = make_schema()
    frame = schema.check(good_records(), "train")
    pd.testing.assert_frame_equal(frame, schema.validate(good_records(), "train").frame)


def test_check_raises_with_every_violation() -> None:
    records = good_records()
    records[0]["age"] = 5
    records[1]["term"] = "12"
    records[2]["income"] = float("inf")
    with pytest.raises(SchemaError) as info:
        make_schema().check(records, "predict")
    error = info.value
    message = str(error)
    assert message.startswith("data does not match the schema:")
    assert "age: min" in message
    assert "term: unknown_category" in message
    assert "income: not_finite" in message
    assert rules(error.report) == {
        ("age", "min"),
        ("term", "unknown_category"),
        ("income", "not_finite"),
    }
    assert isinstance(error, ValueError)


# --- JSON Schema ------------------------------------------------------------------------


def test_json_schema_shape() -> None:
    doc = make_schema().json_schema()
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc["type"] == "object"
    assert doc["additionalProperties"] is False
    assert doc["required"] == make_schema().features
    assert "y" not in doc["properties"]
    assert set(doc["properties"]) == set(make_schema().inputs)
    assert doc["properties"]["age"] == {"type": "integer", "minimum": 18, "maximum": 120}
    term = doc["properties"]["term"]
    assert term == {"anyOf": [{"type": "string", "enum": ["36", "60"]}, {"type": "null"}]}
    assert "enum" not in str(doc["properties"]["purpose"])  # unknown: allow


def test_json_schema_description() -> None:
    schema = Schema(
        {
            "x": Column(type=ColumnType.FLOAT, description="the x"),
            "y": Column(type=ColumnType.INT, role=Role.TARGET),
        },
        "y",
    )
    assert schema.json_schema()["properties"]["x"]["description"] == "the x"


def test_json_schema_accepts_good_records() -> None:
    schema = make_schema()
    doc = schema.json_schema()
    for record in good_records():
        jsonschema.validate({k: v for k, v in record.items() if k != "y"}, doc)
    # optional columns may be left out
    minimal = {k: good_records()[0][k] for k in schema.features}
    jsonschema.validate(minimal, doc)


@pytest.mark.parametrize(
    ("change", "drop"),
    [
        ({"age": 10}, None),  # below minimum
        ({"age": 130}, None),  # above maximum
        ({"age": 30.5}, None),  # not an integer
        ({"age": None}, None),  # not nullable
        ({"age": "30"}, None),  # a string
        ({"income": -1.0}, None),
        ({"owner": "yes"}, None),
        ({"term": "48"}, None),  # not in the enum
        ({"term": 36}, None),  # JSON callers send text
        ({"note": 5}, None),
        ({"colour": "red"}, None),  # additional property
        ({"y": 1}, None),  # the target is not an input
        ({}, "income"),  # a required feature is missing
    ],
)
def test_json_schema_rejects_bad_records(change: dict[str, Any], drop: str | None) -> None:
    record = {k: v for k, v in good_records()[0].items() if k != "y"}
    record.update(change)
    if drop:
        del record[drop]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(record, make_schema().json_schema())


def test_json_schema_ignores_infinite_bounds() -> None:
    schema = Schema(
        {
            "x": Column(type=ColumnType.FLOAT, min=float("-inf"), max=float("inf")),
            "y": Column(type=ColumnType.INT, role=Role.TARGET),
        },
        "y",
    )
    prop = schema.json_schema()["properties"]["x"]["anyOf"][0]
    assert prop == {"type": "number"}


# --- Column rules ---------------------------------------------------------------------------


def test_column_rules_must_fit_the_type() -> None:
    with pytest.raises(ValueError, match="min/max apply to numeric columns"):
        Column(type=ColumnType.STRING, min=0)
    with pytest.raises(ValueError, match="greater than max"):
        Column(type=ColumnType.FLOAT, min=2, max=1)
    with pytest.raises(ValueError, match="category columns only"):
        Column(type=ColumnType.STRING, allowed=["a"])
    with pytest.raises(ValueError, match="Extra inputs"):
        Column(type=ColumnType.FLOAT, colour="red")  # type: ignore[call-arg]


# --- scale ----------------------------------------------------------------------------------


def test_validating_200k_rows_by_10_columns_completes() -> None:
    n = 200_000
    rng = np.random.default_rng(0)
    columns = {f"f{i}": Column(type=ColumnType.FLOAT, min=-10, max=10) for i in range(4)}
    columns["i0"] = Column(type=ColumnType.INT, min=0)
    columns["c0"] = Column(type=ColumnType.CATEGORY, allowed=["a", "b", "c"])
    columns["c1"] = Column(type=ColumnType.CATEGORY, allowed=["x", "y"], unknown="allow")
    columns["s0"] = Column(type=ColumnType.STRING)
    columns["d0"] = Column(type=ColumnType.DATETIME)
    columns["y"] = Column(type=ColumnType.INT, role=Role.TARGET, nullable=False)
    frame = pd.DataFrame({f"f{i}": rng.normal(size=n) for i in range(4)})
    frame["i0"] = rng.integers(0, 100, size=n)
    frame["c0"] = rng.choice(["a", "b", "c", "d"], size=n)
    frame["c1"] = rng.choice(["x", "y", "z"], size=n)
    frame["s0"] = pd.Series(np.arange(n)).astype(str).to_numpy(dtype=object)
    frame["d0"] = (pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n), unit="s")).astype(str)
    frame["y"] = rng.integers(0, 2, size=n)
    result = Schema(columns, "y").validate(frame, "train")
    assert result.report.n_rows == n
    assert rules(result.report) == {("c0", "unknown_category")}
    assert violation(result.report, "c0", "unknown_category").count == int(
        (frame["c0"] == "d").sum()
    )
    assert result.frame["d0"].dtype == np.dtype("datetime64[ns]")
    assert result.frame.shape == (n, 10)
