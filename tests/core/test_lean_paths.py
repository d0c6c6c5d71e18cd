"""The prediction path without pandas (the lean serving install) answers as it does with it.

Each test runs the same input twice in this (full) install: once as usual,
once with :data:`atoll._pandas.module` set to ``None``, which is what the lean
install sees; ``tests/e2e/test_lean_install.py`` then serves a model from a
real venv without pandas.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from atoll import _pandas, _validate
from atoll.data.wrangler import Wrangler
from atoll.errors import MissingDependencyError
from atoll.schema import Column, Schema, Validated
from atoll.serve.codecs_arrow import table_to_decoded
from atoll.spec import StepSpec
from atoll.types import ColumnType, Role

SCHEMA = Schema(
    {
        "age": Column(type=ColumnType.INT, min=18, max=120, nullable=False),
        "income": Column(type=ColumnType.FLOAT, min=0),
        "owner": Column(type=ColumnType.BOOL),
        "term": Column(type=ColumnType.CATEGORY, allowed=["36", "60"]),
        "purpose": Column(type=ColumnType.CATEGORY, allowed=["car", "home"], unknown="allow"),
        "applied": Column(type=ColumnType.DATETIME),
        "note": Column(type=ColumnType.STRING),
        "y": Column(type=ColumnType.INT, role=Role.TARGET),
    },
    target="y",
)

# Per column, the values rows cycle through: good ones, nulls, and each kind of bad one.
VALUES: dict[str, list[Any]] = {
    "age": [30, 45.0, None, "x", 17, 2**63 + 5, 30.5, True, math.nan],
    "income": [52000.5, 0, None, -1.0, "12", math.inf, 7, False, 2**64 + 1],
    "owner": [True, False, 1, 0, None, 2, "yes", 0.5, 1.0],
    "term": ["36", "60", 36, None, "12", 60.0, 36.5, True, math.nan],
    "purpose": ["car", "home", "boat", None, 7, "", "car ", math.nan, 2**63],
    "applied": [
        "2024-01-02T03:04:05",
        "2024-02-29",
        "2023-02-29",
        "2024-01-02T03:04:05.123456789+05:30",
        "today",
        None,
        1700000000,
        "2024-01-02 03:04Z",
        math.nan,
    ],
    "note": ["a", None, 12, 1.5, 2.0, True, "", "é", math.nan],
}


@pytest.fixture
def no_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the lean install sees: no pandas to import."""
    monkeypatch.setattr(_pandas, "module", None)


def _rows(n_rows: int) -> list[dict[str, Any]]:
    return [
        {name: values[(i * 7 + j) % len(values)] for j, (name, values) in enumerate(VALUES.items())}
        for i in range(n_rows)
    ]


def _validated_twice(
    data: Any, monkeypatch: pytest.MonkeyPatch, mode: str = "predict"
) -> tuple[Validated, Validated]:
    with_pandas = SCHEMA.validate(data, mode)  # type: ignore[arg-type]
    monkeypatch.setattr(_pandas, "module", None)
    without = SCHEMA.validate(data, mode)  # type: ignore[arg-type]
    monkeypatch.undo()
    return with_pandas, without


def _assert_same(one: Validated, other: Validated) -> None:
    assert one.report.violations == other.report.violations
    assert one.invalid_rows.tolist() == other.invalid_rows.tolist()
    assert list(one.columns) == list(other.columns)
    for name, values in one.columns.items():
        theirs = other.columns[name]
        assert values.dtype == theirs.dtype, name
        if values.dtype.kind in "fM":
            np.testing.assert_array_equal(values, theirs, err_msg=name)  # NaN == NaN here
        else:
            assert values.tolist() == theirs.tolist(), name


@pytest.mark.parametrize("n_rows", [9, 300])  # a few rows, and past every small-input shortcut
@pytest.mark.parametrize("layout", ["records", "columns"])
def test_validation_gives_the_same_columns_and_report_without_pandas(
    n_rows: int, layout: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _rows(n_rows)
    data: Any = rows if layout == "records" else {k: [r[k] for r in rows] for k in rows[0]}
    with_pandas, without = _validated_twice(data, monkeypatch)
    assert with_pandas.report.violations  # the corpus holds every kind of bad value
    _assert_same(with_pandas, without)


def test_many_records_give_the_same_answer_without_pandas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past MANY_RECORDS pandas reads records in C; without it they are read one by one."""
    rows = _rows(_validate.MANY_RECORDS + 3)
    _assert_same(*_validated_twice(rows, monkeypatch))


# -- datetime text: the plain parser against pandas', form by form --------------------------

READ_BY_BOTH = [
    "2024-01-31",
    "2024-01-31T12:34",
    "2024-01-31 12:34:56",
    "2024-01-31T12:34:56Z",
    "2024-01-31T12:34:56.1",
    "2024-01-31T12:34:56.123456",
    "2024-01-31T12:34:56.123456789",
    "2024-01-31T12:34:56+05:30",
    "2024-01-31T12:34:56-08:00",
    "2024-01-31T12:34:56.5-0800",
    "2024-01-31T00:30:00+01:00",  # the day before, in UTC
    "2024-12-31T23:30:00-01:00",  # the year after, in UTC
    "2024-01-31T12:34+00:00",
    "2024-02-29T00:00:00",
    "1970-01-01T00:00:00Z",
    "1969-12-31T23:59:59.999999999",
    "0001-01-01",
    "1677-09-21T00:12:43.145224193",  # the first nanosecond pandas can hold
    "1677-09-21T00:12:43.145224192",  # one before it
    "2262-04-11T23:47:16.854775807",  # the last
    "2262-04-11T23:47:16.854775808",  # one after it
    "2262-04-11T23:47:16.854775807-00:01",
    "9999-12-31T23:59:59",
    "2023-02-29",
    "2024-04-31",
    "2024-13-01",
    "2024-00-10",
    "2024-01-31T24:00:00",
    "2024-01-31T23:60:00",
    "2024-01-31T23:59:60",
    "2024-01-31T12",
    "2024-01-31T12Z",
    " 2024-01-31",
    "2024-1-3",
    "2024-01-31T1:02:03",
    "2024-01-31T12:34:56+05",
    "2024-01-31T12:34:56 +05:00",
    "2024-01-31T12:34:56 Z",
    "2024-01-31T12:34:56.123+05",
    "2024-01-31T12:34:56+24:00",
    "2024-01-31T12:34:56+05:60",
    "\u0662\u0660\u0662\u0664-\u0660\u0661-\u0663\u0661",  # Arabic-Indic digits: not pandas'
    "\uff12\uff10\uff12\uff14-\uff10\uff11-\uff13\uff11",  # full-width digits
]

# Every combination of these parts, one value at a time (pandas' answer for a value at
# the edge of the range depends on its neighbours: alone is the reference).
PARTS = (
    ["", " "],
    ["1677", "1678", "1970", "2024", "2261", "2262"],
    ["-1", "-01", "-02", "-12", "-13", "-00"],
    ["-1", "-09", "-29", "-30", "-31", "-32"],
    [
        "",
        "T1",
        "T12",
        " 12:3",
        "T12:34",
        "T23:59:5",
        "T12:34:56",
        "T12:34:56.1",
        "T00:00:00.000000001",
    ],
    ["", "Z", " Z", "+05", "+05:30", "-0800", "+14:00", "-12:00", " +01:00"],
)
COMBINATIONS = ["".join(parts) for parts in itertools.product(*PARTS)][::7]


def test_every_combination_the_plain_parser_reads_is_read_as_pandas_does() -> None:
    assert len(COMBINATIONS) > 4_000
    read = 0
    for text in COMBINATIONS:
        values = np.array([text], dtype=object)
        parsed = _validate._parse_plain(values, final=False)
        if parsed is None:  # pandas decides: a form (or a year near the range's ends) it owns
            continue
        read += 1
        stamps, bad = _validate._parse(values)
        assert (parsed[1].tolist(), parsed[0].tolist()) == (bad.tolist(), stamps.tolist()), text
    assert read > len(COMBINATIONS) // 2


@pytest.mark.parametrize("text", READ_BY_BOTH)
def test_the_plain_datetime_parser_reads_each_form_as_pandas_does(text: str) -> None:
    values = np.array([text, None, "2024-01-01"], dtype=object)
    pandas_stamps, pandas_bad = _validate._parse(values)
    parsed = _validate._parse_plain(values, final=True)
    assert parsed is not None
    stamps, bad = parsed
    assert bad.tolist() == pandas_bad.tolist()
    np.testing.assert_array_equal(stamps, pandas_stamps)


@pytest.mark.parametrize(
    "text", ["2024-01", "20240131", "2024-W05-3", "2024-01-31 ", "2024-01-31T12:34:56.1234567890"]
)
def test_other_forms_go_to_pandas_or_are_refused_without_it(text: str) -> None:
    values = np.array([text], dtype=object)
    assert _validate._parse_plain(values, final=False) is None  # pandas decides
    stamps, bad = _validate._parse_plain(values, final=True) or (None, None)
    assert stamps is not None and bad is not None
    assert bad.tolist() == [True] and np.isnat(stamps).all()


PLUS_2 = dt.timezone(dt.timedelta(hours=2))
MINUS_5 = dt.timezone(dt.timedelta(hours=-5, minutes=-30))
DATE_OBJECTS = {  # what an Arrow body's date and timestamp columns decode to
    "naive": [dt.datetime(2024, 1, 2, 3, 4, 5, 678901), None, dt.datetime(2023, 12, 31)],
    "one zone": [dt.datetime(2024, 1, 2, 0, 30, tzinfo=PLUS_2), None],
    "mixed": [
        dt.datetime(2024, 1, 2, 0, 30, tzinfo=PLUS_2),
        dt.datetime(2024, 12, 31, 23, 0, tzinfo=MINUS_5),
        dt.datetime(2024, 6, 1, 12),
        dt.date(2024, 2, 29),
        None,
    ],
    "dates": [dt.date(2024, 2, 29), dt.date(1970, 1, 1), None],
}


@pytest.mark.parametrize("kind", list(DATE_OBJECTS))
def test_python_dates_are_read_as_pandas_reads_them(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = DATE_OBJECTS[kind]
    data = {"age": [30] * len(values), "applied": values, "term": values}
    with_pandas, without = _validated_twice(data, monkeypatch)
    assert not np.isnat(with_pandas.columns["applied"][0])
    refused = {v.column for v in with_pandas.report.violations if v.rule == "type"}
    assert refused == {"term"}  # dates are not text
    _assert_same(with_pandas, without)


@pytest.mark.parametrize("kind", list(DATE_OBJECTS))
def test_the_plain_parser_reads_python_dates_as_pandas_does(kind: str) -> None:
    values = np.empty(len(DATE_OBJECTS[kind]), dtype=object)
    values[:] = DATE_OBJECTS[kind]
    pandas_stamps, pandas_bad = _validate._parse(values)
    parsed = _validate._parse_plain(values, final=True)
    assert parsed is not None
    assert parsed[1].tolist() == pandas_bad.tolist()
    np.testing.assert_array_equal(parsed[0], pandas_stamps)


def test_arrow_timestamps_are_read_alike_with_or_without_pandas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nanoseconds and zones survive decoding, which needs no pandas (``to_pylist`` would)."""
    naive = pa.array([1_706_704_496_123_456_789, None, -(2**62)], pa.timestamp("ns"))
    zoned = pa.array([1_706_704_496_123_456, None, 0], pa.timestamp("us", tz="Asia/Tokyo"))
    table = pa.table({"applied": naive, "zoned": zoned})
    decoded = table_to_decoded(table, max_rows=10, budget=10_000, where="body")
    schema = Schema(
        {"applied": Column(type=ColumnType.DATETIME), "zoned": Column(type=ColumnType.DATETIME)},
        target="y",
    )
    with_pandas = schema.validate(decoded.columns, "predict")
    monkeypatch.setattr(_pandas, "module", None)
    _assert_same(with_pandas, schema.validate(decoded.columns, "predict"))
    expected = pd.to_datetime(naive.to_pylist()).to_numpy()
    np.testing.assert_array_equal(with_pandas.columns["applied"], expected)
    in_utc = [
        None if t is None else t.astimezone(dt.UTC).replace(tzinfo=None) for t in zoned.to_pylist()
    ]
    np.testing.assert_array_equal(with_pandas.columns["zoned"], np.array(in_utc, "M8[ns]"))


def test_big_integers_are_typed_as_pandas_types_them() -> None:
    big = 2**63
    for values in (
        [big + 1, 2],
        [big + 1, -1],
        [2**64 + 1],
        [2**64 - 1, None],
        [big + 1, 0.5],
        [-big - 5, 0.5],
        [2**64 + 1, 0.5],
        [big + 1, -1, 0.5],
        [np.int64(3), big + 1],
        [big + 1, np.float32(0.5)],
    ):
        ours = _validate._infer(values)
        theirs = pd.Series(values, dtype=None).to_numpy()
        assert ours.dtype == theirs.dtype, values
        np.testing.assert_array_equal(ours, theirs, err_msg=str(values))  # NaN equals NaN


def test_units_finer_than_nanoseconds_are_kept() -> None:
    stamps = np.array(["1970-01-01T00:00:00.000000000001", "NaT"], dtype="datetime64[ps]")
    result = SCHEMA.validate({"age": [30, 31], "applied": stamps}, "predict")
    assert result.columns["applied"].dtype == np.dtype("datetime64[ns]")
    assert not any(v.column == "applied" for v in result.report.violations)


def test_values_no_parser_judges_need_pandas(no_pandas: None) -> None:
    data = {"age": [30], "income": [Decimal("1.5")]}
    with pytest.raises(MissingDependencyError, match=r"atoll\[full\]"):
        SCHEMA.validate(data, "predict")


# -- nulls ----------------------------------------------------------------------------------

SCALARS = [
    None,
    math.nan,
    np.float32("nan"),
    np.float64(1.5),
    complex("nan"),
    Decimal("NaN"),
    Decimal("1.5"),
    np.datetime64("NaT"),
    np.timedelta64("NaT"),
    np.datetime64("2024-01-01"),
    pd.NaT,
    pd.NA,
    "x",
    "",
    0,
    True,
    np.int64(3),
    [],
    {},
]


def test_nulls_are_found_as_pandas_finds_them(monkeypatch: pytest.MonkeyPatch) -> None:
    values = np.empty(len(SCALARS), dtype=object)
    values[:] = SCALARS
    expected = pd.isna(values).tolist()
    assert [_pandas.is_null(value) for value in SCALARS] == expected
    monkeypatch.setattr(_pandas, "module", None)
    kept = [v is not pd.NaT and v is not pd.NA for v in SCALARS]  # they need pandas to exist
    plain = [e for e, keep in zip(expected, kept, strict=True) if keep]
    assert _pandas.isna(values[kept]).tolist() == plain
    floats = np.array([1.0, np.nan])
    assert _pandas.isna(floats).tolist() == [False, True]
    stamps = np.array(["2024-01-01", "NaT"], dtype="datetime64[ns]")
    assert _pandas.isna(stamps).tolist() == [False, True]


# -- the built-in steps ---------------------------------------------------------------------

FEATURES = ["age", "income", "owner", "term", "purpose", "applied"]
PIPELINE: list[dict[str, Any]] = [
    {"step": "impute", "columns": ["income"], "strategy": "median"},
    {"step": "impute", "columns": ["purpose"], "strategy": "most_frequent"},
    {"step": "log1p", "columns": ["income"]},
    {"step": "scale", "columns": ["income", "age"]},
    {"step": "clip", "columns": ["owner"], "lower": 0, "upper": 1},
    {"step": "onehot", "columns": ["purpose"], "max_categories": 4},
    {"step": "ordinal", "columns": ["term"]},
    {"step": "datetime_parts", "columns": ["applied"]},
    {"step": "bucketize", "columns": ["age"], "bins": 3},
]


@pytest.mark.parametrize("n_rows", [9, 500])
def test_the_steps_give_the_same_matrix_without_pandas(
    n_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(7)
    good = [
        {
            "age": int(rng.integers(18, 90)),
            "income": None if i % 5 == 0 else float(rng.lognormal(10, 1)),
            "owner": bool(i % 2),
            "term": [None, "36", "60"][i % 3],
            "purpose": [None, "car", "home", "boat", "car"][i % 5],
            "applied": None if i % 11 == 0 else f"2024-0{1 + i % 9}-1{i % 10}T0{i % 10}:30:00",
            "note": "n",
        }
        for i in range(max(n_rows, 40))
    ]
    train = SCHEMA.validate(good[: max(n_rows, 40)], "predict")
    wrangler = Wrangler.from_spec(
        [StepSpec.model_validate(step) for step in PIPELINE], FEATURES, []
    ).fit(train.frame)
    scored = SCHEMA.validate([*good[:n_rows], {**good[1], "purpose": "unseen"}], "predict")
    with_pandas = wrangler.matrix(scored.columns)
    monkeypatch.setattr(_pandas, "module", None)
    without = wrangler.matrix(scored.columns)
    assert with_pandas.shape == (n_rows + 1, len(wrangler.feature_names_))
    np.testing.assert_array_equal(with_pandas, without)


def test_a_user_step_or_a_frame_needs_pandas(no_pandas: None) -> None:
    validated = SCHEMA.validate([{"age": 30}], "predict")
    with pytest.raises(MissingDependencyError, match=r"pip install 'atoll\[full\]'"):
        validated.frame  # noqa: B018


@pytest.mark.parametrize(
    "values",
    [
        ["2024-01-02", " 2024-01-02", "today", "now", "", "   ", "+2024-01-02", "T12:00", None],
        ["2024-01-02", 1700000000, 1.5, np.int64(3), "today", None, math.nan],
    ],
    ids=["text and nulls", "mixed"],
)
def test_the_values_kept_from_pandas_are_numbers_and_words(values: list[Any]) -> None:
    expected = [
        isinstance(v, int | float | np.number)
        or (isinstance(v, str) and not v.strip()[:1].isdigit())
        for v in values
    ]
    assert _validate._unparsable(values).tolist() == expected
