"""The validation engine behind :meth:`atoll.schema.Schema.validate`.

Each column is cast to its canonical layout by a small function per type that
also returns the positions whose value could not be cast safely; the row
rules (null, range, category) then run vectorised on the cast column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from atoll.schema import (
    MAX_EXAMPLE_ROWS,
    Column,
    Mode,
    UnknownPolicy,
    Validated,
    ValidationReport,
    Violation,
)
from atoll.types import ColumnType

if TYPE_CHECKING:
    from atoll.schema import Schema

Cast = tuple["pd.Series[Any]", np.ndarray]
"""A cast column and a boolean mask of the values that could not be cast."""


def validate_frame(
    schema: Schema, data: pd.DataFrame | Sequence[Mapping[str, Any]], mode: Mode
) -> Validated:
    frame = data if isinstance(data, pd.DataFrame) else _from_records(data)
    report = ValidationReport(n_rows=len(frame))
    invalid = np.zeros(len(frame), dtype=bool)
    report.violations.extend(_column_set_violations(schema, frame, mode))
    out: dict[str, pd.Series[Any]] = {}
    for name, column in schema.columns.items():
        if name not in frame.columns:
            continue
        series, bad = _cast(column.type, frame[name].reset_index(drop=True))
        _flag(report, invalid, "type", name, bad, f"values are not of type {column.type.value}")
        for rule, mask, text in _row_rules(column, series, bad):
            _flag(report, invalid, rule, name, mask, text)
        out[name] = series
    report.n_invalid_rows = int(invalid.sum())
    return Validated(
        frame=pd.DataFrame(out, index=pd.RangeIndex(len(frame))),
        report=report,
        invalid_rows=invalid,
    )


def _from_records(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame.from_records(list(records))


def _column_set_violations(schema: Schema, frame: pd.DataFrame, mode: Mode) -> list[Violation]:
    required = list(schema.columns) if mode == "train" else schema.features
    present = {str(c) for c in frame.columns}
    out = [
        Violation("missing_column", name, len(frame), [], "required column is missing")
        for name in required
        if name not in present
    ]
    out += [
        Violation("unexpected_column", str(name), len(frame), [], "column is not in the schema")
        for name in frame.columns
        if str(name) not in schema.columns
    ]
    return out


def _flag(
    report: ValidationReport,
    invalid: np.ndarray,
    rule: str,
    column: str,
    mask: np.ndarray,
    message: str,
) -> None:
    count = int(mask.sum())
    if count == 0:
        return
    rows = np.flatnonzero(mask)[:MAX_EXAMPLE_ROWS].tolist()
    invalid |= mask
    report.violations.append(Violation(rule, column, count, rows, message))


def _row_rules(
    column: Column, series: pd.Series[Any], mistyped: np.ndarray
) -> list[tuple[str, np.ndarray, str]]:
    """The row rules; a value already refused for its type is not also called null."""
    rules: list[tuple[str, np.ndarray, str]] = []
    null = series.isna().to_numpy()
    if not column.nullable:
        rules.append(("null", null & ~mistyped, "null values in a non-nullable column"))
    if column.type.is_numeric:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        rules.append(("not_finite", np.isinf(values), "infinite values"))
        with np.errstate(invalid="ignore"):
            if column.min is not None:
                rules.append(("min", values < column.min, f"values below min {column.min:g}"))
            if column.max is not None:
                rules.append(("max", values > column.max, f"values above max {column.max:g}"))
    if column.allowed is not None and column.unknown is UnknownPolicy.ERROR:
        unknown = ~series.isin(column.allowed).to_numpy() & ~null
        rules.append(("unknown_category", unknown, "values outside the allowed categories"))
    return rules


def _cast(kind: ColumnType, series: pd.Series[Any]) -> Cast:
    return _CASTS[kind](series)


def _is_object_like(series: pd.Series[Any]) -> bool:
    return series.dtype == object or isinstance(series.dtype, pd.StringDtype)


def _cast_number(series: pd.Series[Any], integral: bool) -> Cast:
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype(np.float64), np.zeros(len(series), dtype=bool)
    if pd.api.types.is_numeric_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    elif _is_object_like(series):
        values, bad = _numbers_from_objects(series)
        return _check_integral(values, bad, integral)
    else:
        return _all_bad(series, np.float64)
    return _check_integral(values, np.zeros(len(values), dtype=bool), integral)


def _check_integral(values: np.ndarray, bad: np.ndarray, integral: bool) -> Cast:
    if integral:
        with np.errstate(invalid="ignore"):
            fractional = np.isfinite(values) & (values != np.floor(values))
        bad = bad | fractional
        values = np.where(fractional, np.nan, values)
    return pd.Series(values, dtype=np.float64), bad


def _numbers_from_objects(series: pd.Series[Any]) -> tuple[np.ndarray, np.ndarray]:
    raw = series.to_numpy(dtype=object)
    ok = np.fromiter(
        (
            v is None
            or (isinstance(v, int | float | np.number) and not isinstance(v, bool | np.bool_))
            for v in raw
        ),
        dtype=bool,
        count=len(raw),
    )
    null = pd.isna(series).to_numpy()
    values = np.full(len(raw), np.nan)
    good = ok & ~null
    values[good] = raw[good].astype(np.float64)
    return values, ~ok & ~null


def _cast_bool(series: pd.Series[Any]) -> Cast:
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype(np.float64), np.zeros(len(series), dtype=bool)
    if series.dtype == object:  # true/false mixed with nulls (e.g. JSON records)
        series = series.map(lambda v: int(v) if isinstance(v, bool | np.bool_) else v)
    values, bad = _cast_number(series, integral=True)
    raw = values.to_numpy()
    with np.errstate(invalid="ignore"):
        not_binary = ~np.isnan(raw) & (raw != 0) & (raw != 1)
    return values.where(~not_binary, np.nan), bad | not_binary


def _cast_text(series: pd.Series[Any]) -> Cast:
    """Text passes; integers become their decimal text; anything else is refused."""
    if isinstance(series.dtype, pd.StringDtype):
        missing: Any = None  # the stubs do not admit None, pandas does
        return _as_text(series.to_numpy(dtype=object, na_value=missing)), _none(series)
    if pd.api.types.is_integer_dtype(series.dtype):
        text = series.astype(str).to_numpy(dtype=object)
        text[series.isna().to_numpy()] = None
        return _as_text(text), _none(series)
    if pd.api.types.is_float_dtype(series.dtype):
        numbers, bad = _check_integral(series.to_numpy(dtype=np.float64), _none(series), True)
        raw: np.ndarray = numbers.to_numpy(dtype=object)
    else:
        raw, bad = series.to_numpy(dtype=object), _none(series)
    null = pd.isna(raw)
    text = np.array(
        [None if n else _text_or_none(v) for v, n in zip(raw, null, strict=True)], dtype=object
    )
    return _as_text(text), bad | (pd.isna(text) & ~null)


def _none(series: pd.Series[Any]) -> np.ndarray:
    return np.zeros(len(series), dtype=bool)


def _text_or_none(value: Any) -> str | None:
    """Strings pass; integers become their decimal text; anything else is refused."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return None


def _as_text(values: np.ndarray) -> pd.Series[Any]:
    return pd.Series(values, dtype=object)


def _cast_datetime(series: pd.Series[Any]) -> Cast:
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]"), (
            _none(series)
        )
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return series.astype("datetime64[ns]"), np.zeros(len(series), dtype=bool)
    if _is_object_like(series):
        null = series.isna().to_numpy()
        number = series.map(lambda v: isinstance(v, int | float | np.number)).to_numpy(bool)
        # numbers are never parsed (pandas would read them as epochs): they are refused
        parsed = pd.to_datetime(
            series.where(~number, None), format="ISO8601", errors="coerce", utc=True
        )
        parsed = parsed.dt.tz_localize(None).astype("datetime64[ns]")
        return parsed, parsed.isna().to_numpy() & ~null
    return _all_bad(series, "datetime64[ns]")


def _all_bad(series: pd.Series[Any], dtype: Any) -> Cast:
    null = series.isna().to_numpy()
    return pd.Series(np.full(len(series), None), dtype=dtype), ~null


_CASTS: dict[ColumnType, Callable[[pd.Series[Any]], Cast]] = {
    ColumnType.FLOAT: lambda s: _cast_number(s, integral=False),
    ColumnType.INT: lambda s: _cast_number(s, integral=True),
    ColumnType.BOOL: _cast_bool,
    ColumnType.CATEGORY: _cast_text,
    ColumnType.STRING: _cast_text,
    ColumnType.DATETIME: _cast_datetime,
}
