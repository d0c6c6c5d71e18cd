"""The validation engine behind :meth:`atoll.schema.Schema.validate`.

Every input (a frame, records, a mapping of column lists) is first turned into
one array per column, typed the way pandas would type it, then each column is
cast to its canonical layout by a small function per type that also returns
the positions whose value could not be cast safely; the row rules (null,
range, category) then run vectorised on the cast array. Only numpy runs per
call: a frame is built from the canonical arrays once, and only if asked for
(:attr:`atoll.schema.Validated.frame`), because building pandas objects is
what used to dominate the cost of scoring a few rows.

pandas itself is optional (:mod:`atoll._pandas`): the lean serving install
has none. Where this module calls it, for a pandas input or as a shortcut for
many rows, the plain code beside it gives the same answer without it
(``tests/core/test_lean_paths.py``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from atoll import _pandas
from atoll.errors import DataError
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
    import pandas as pd

    from atoll.schema import Data, Schema

# An input column (``raw`` below) is a numpy array, or a pandas extension array
# (nullable, zoned...) read with the same pandas dtype tests as always.
BoolArray = npt.NDArray[np.bool_]
Cast = tuple[npt.NDArray[Any], BoolArray]
"""A cast column and a boolean mask of the values that could not be cast."""

SMALL = 64
"""Up to this many rows a plain Python loop beats pandas' per-call overhead."""

MANY_RECORDS = 10_000
"""Past this many records, visiting each dict once (pandas, in C) beats one pass per column."""

_NS = np.dtype("datetime64[ns]")
_NAT = np.datetime64("NaT", "ns")


# -- input: one array per column ------------------------------------------------------------


class _Input:
    """The labels of the input's columns, in order, and a way to read one as an array."""

    def __init__(self, labels: list[Any], n_rows: int, read: Callable[[Any], Any]) -> None:
        self.labels = labels
        self.n_rows = n_rows
        self.read = read


def _input(data: Data) -> _Input:
    if _pandas.is_frame(data):
        return _frame_input(cast("pd.DataFrame", data))
    if isinstance(data, Mapping):
        return _columns_input(data)
    rows = data if isinstance(data, list) else list(data)
    records = all(issubclass(kind, Mapping) for kind in set(map(type, rows)))
    many = len(rows) > MANY_RECORDS and _pandas.module is not None  # pandas' C loop is faster
    if not records or many:
        return _frame_input(_pandas.required().DataFrame.from_records(rows))
    return _records_input(rows)


def _frame_input(frame: pd.DataFrame) -> _Input:
    return _Input(list(frame.columns), len(frame), lambda label: _series_values(frame[label]))


def _series_values(series: pd.Series[Any]) -> Any:
    """The column's values without its index: a numpy array, or pandas' extension array."""
    if isinstance(series.dtype, np.dtype):
        return series.to_numpy()
    return series.array


def _records_input(rows: list[Any]) -> _Input:
    """Records as :meth:`pandas.DataFrame.from_records` reads them: a missing key is NaN."""
    labels = list(dict.fromkeys(itertools.chain.from_iterable(rows)))

    def read(label: Any) -> Any:
        try:  # every row has the key: picked in C
            values = list(map(operator.itemgetter(label), rows))
        except KeyError:
            values = [row.get(label, math.nan) for row in rows]
        return _infer(values)

    return _Input(labels, len(rows) if labels else 0, read)  # as pandas: no keys, no rows


def _columns_input(columns: Mapping[Any, Any]) -> _Input:
    """Column lists as :class:`pandas.DataFrame` reads a dict of them; lengths must agree."""
    lengths = {label: _column_length(label, values) for label, values in columns.items()}
    if len(set(lengths.values())) > 1:
        first = next(iter(lengths))
        odd = next(label for label, n in lengths.items() if n != lengths[first])
        raise DataError(
            f"the columns have different lengths: {first!r} has {lengths[first]} values, "
            f"{odd!r} has {lengths[odd]}",
            column=str(odd),
        )
    n_rows = next(iter(lengths.values()), 0)
    return _Input(list(columns), n_rows, lambda label: _column_values(columns[label]))


def _column_length(label: Any, values: Any) -> int:
    if type(values) is list:
        return len(values)
    text = isinstance(values, str | bytes)
    listed = (
        isinstance(values, Sequence)
        or _pandas.is_series(values)
        or (isinstance(values, np.ndarray) and values.ndim == 1)
    )
    if text or not listed:
        raise DataError(
            f"column {label!r} must be a list of values, one per row; got {type(values).__name__}",
            column=str(label),
        )
    return len(values)


def _column_values(values: Any) -> Any:
    """An array keeps its dtype (numpy text becomes Python text), as in a DataFrame."""
    if _pandas.is_series(values):
        return _series_values(values)
    if isinstance(values, np.ndarray):
        return values.astype(object) if values.dtype.kind in "US" else values
    return _infer(values)


_NONE = frozenset({type(None)})
_TEXT_OR_NONE = _NONE | {str}
_INTS = frozenset({int, np.int8, np.int16, np.int32, np.int64})
_FLOATS = frozenset({float, np.float16, np.float32, np.float64})
_NUMBERS = _INTS | _FLOATS
_BOOLS = frozenset({bool, np.bool_})
_PLAIN = _NUMBERS | _BOOLS | _NONE | {str}
_DATES = frozenset({dt.datetime, dt.date})
"""What an Arrow body's date and timestamp columns decode to."""
_AS_OBJECTS = _PLAIN | _DATES | {np.datetime64, np.str_}
"""What the casts read as Python objects the way they read pandas' typing of them."""


def _infer(values: Sequence[Any] | npt.NDArray[Any]) -> Any:
    """Values typed as pandas types a list of them, so every input casts the same way.

    Plain Python and numpy scalars (what JSON and CSV give) are typed here
    without pandas, in the ways that change a cast or speed it up: all
    booleans, all integers, numbers with nulls (float64). Anything else
    (dates, decimals, ``pd.NA``, unsigned or huge integers, subclasses...) is
    rare enough to hand to pandas itself.
    """
    kinds = set(map(type, values))
    if kinds <= _PLAIN:
        return _plain_array(values, kinds)
    if _pandas.module is None and kinds <= _AS_OBJECTS:
        return _objects(values)  # dates: the datetime cast reads them as pandas would type them
    return _series_values(_pandas.required().Series(list(values), dtype=None))


def _plain_array(values: Sequence[Any] | npt.NDArray[Any], kinds: set[type]) -> Any:
    """:func:`_infer` for plain scalars (what JSON, CSV and Arrow bodies decode to)."""
    if kinds and kinds <= _BOOLS:
        return np.array(values, dtype=bool)
    if kinds and kinds <= _INTS:
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:
            return _past_int64(values, kinds)
    if kinds & _NUMBERS and kinds <= _NUMBERS | _NONE:
        floats = np.array(values, dtype=np.float64)  # None becomes NaN, as in pandas
        if int in kinds and (np.abs(floats) >= 2.0**63).any() and not _ints_fit(values):
            return _past_int64(values, kinds)
        return floats
    return _objects(values)


def _past_int64(values: Sequence[Any] | npt.NDArray[Any], kinds: set[type]) -> Any:
    """Numbers with a Python int past int64, typed by pandas' rule.

    When every integer is a Python int in uint64's range: uint64, or float64
    if floats or nulls are mixed in; otherwise Python objects.
    """
    unsigned = not kinds & (_INTS - {int}) and all(
        0 <= value < 2**64 for value in values if type(value) is int
    )
    if not unsigned:
        return _objects(values)
    return np.array(values, dtype=np.uint64 if kinds <= _INTS else np.float64)


def _ints_fit(values: Sequence[Any] | npt.NDArray[Any]) -> bool:
    """Whether every Python int among ``values`` fits in int64."""
    ints = [v for v in values if type(v) is int]
    return min(ints) >= -(2**63) and max(ints) < 2**63


def _objects(values: Sequence[Any] | npt.NDArray[Any]) -> npt.NDArray[np.object_]:
    """A 1-D object array, even when the values are lists themselves."""
    return np.fromiter(values, dtype=object, count=len(values))


# -- the engine -----------------------------------------------------------------------------


def validate_frame(schema: Schema, data: Data, mode: Mode) -> Validated:
    source = _input(data)
    found = _Findings(source.n_rows)
    found.report.violations.extend(_column_set_violations(schema, source, mode))
    present = set(source.labels)
    out: dict[str, npt.NDArray[Any]] = {}
    for name, column in schema.columns.items():
        if name not in present:
            continue
        values, bad = _CASTS[column.type](source.read(name))
        found.flag("type", name, bad, "values are not of type {}", column.type)
        _row_rules(found, name, column, values, bad)
        out[name] = values
    found.report.n_invalid_rows = int(np.count_nonzero(found.invalid))
    return Validated(out, found.report, found.invalid, source.n_rows)


def _column_set_violations(schema: Schema, source: _Input, mode: Mode) -> list[Violation]:
    required = list(schema.columns) if mode == "train" else schema.features
    n_rows = source.n_rows
    present = {str(c) for c in source.labels}
    out = [
        Violation("missing_column", name, n_rows, [], "required column is missing")
        for name in required
        if name not in present
    ]
    out += [
        Violation("unexpected_column", str(name), n_rows, [], "column is not in the schema")
        for name in source.labels
        if str(name) not in schema.columns
    ]
    return out


class _Findings:
    """The report being written, and which rows broke a row rule so far."""

    def __init__(self, n_rows: int) -> None:
        self.report = ValidationReport(n_rows=n_rows)
        self.invalid = np.zeros(n_rows, dtype=bool)

    def flag(self, rule: str, column: str, mask: BoolArray, message: str, *args: Any) -> None:
        """Record ``rule`` for the rows in ``mask``, if any (``message`` is formatted with args)."""
        count = int(np.count_nonzero(mask))  # cheaper than mask.any() for a few rows
        if count == 0:
            return
        rows = np.flatnonzero(mask)[:MAX_EXAMPLE_ROWS].tolist()
        self.invalid |= mask
        self.report.violations.append(Violation(rule, column, count, rows, message.format(*args)))


def _row_rules(
    found: _Findings, name: str, column: Column, values: npt.NDArray[Any], mistyped: BoolArray
) -> None:
    """The row rules; a value already refused for its type is not also called null."""
    null = _nulls(values) if not column.nullable or column.allowed is not None else None
    if null is not None and not column.nullable:
        found.flag("null", name, null & ~mistyped, "null values in a non-nullable column")
    if column.type in _NUMERIC_TYPES:
        found.flag("not_finite", name, np.isinf(values), "infinite values")
        # a numpy scalar bound spares numpy converting a Python float on every comparison
        if column.min is not None:
            low = np.float64(column.min)
            found.flag("min", name, values < low, "values below min {:g}", column.min)
        if column.max is not None:
            high = np.float64(column.max)
            found.flag("max", name, values > high, "values above max {:g}", column.max)
    if null is not None and column.allowed is not None and column.unknown is UnknownPolicy.ERROR:
        unknown = ~_isin(values, column.allowed) & ~null
        found.flag("unknown_category", name, unknown, "values outside the allowed categories")


_NUMERIC_TYPES = frozenset(kind for kind in ColumnType if kind.is_numeric)


def _nulls(values: npt.NDArray[Any]) -> BoolArray:
    """Nulls of a canonical column: NaN, NaT, or ``None`` (its text columns hold no other)."""
    if values.dtype.kind == "f":
        return np.asarray(np.isnan(values), dtype=bool)
    if values.dtype.kind == "M":
        return np.asarray(np.isnat(values), dtype=bool)
    nulls: BoolArray = np.equal(values, cast(Any, None))
    return nulls


def _isin(values: npt.NDArray[Any], allowed: list[str]) -> BoolArray:
    """Membership of each value: a set for a few (or no pandas), pandas' hash table for many."""
    if len(values) <= SMALL or _pandas.module is None:
        members = set(allowed)
        return np.array([v in members for v in values.tolist()], dtype=bool)
    series = _pandas.module.Series(values, dtype=object, copy=False)
    return np.asarray(series.isin(allowed).to_numpy(dtype=bool), dtype=bool)


# -- casts, one per column type -------------------------------------------------------------


def _kind(raw: Any) -> str:
    """What a column holds, in the terms the casts branch on (pandas' own dtype tests).

    ``b`` bool, ``i`` integer, ``f`` float, ``n`` other numeric, ``O`` Python
    objects, ``s`` pandas text, ``M`` naive datetime, ``tz`` zoned datetime,
    ``x`` anything else.
    """
    dtype = raw.dtype
    if isinstance(dtype, np.dtype):
        return _NUMPY_KINDS.get(dtype.kind, "x")
    pd = _pandas.required()  # any other dtype is one of pandas' extension types
    if isinstance(dtype, pd.StringDtype):
        return "s"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "tz"
    tests = (
        ("b", pd.api.types.is_bool_dtype),
        ("i", pd.api.types.is_integer_dtype),
        ("f", pd.api.types.is_float_dtype),
        ("n", pd.api.types.is_numeric_dtype),
        ("M", pd.api.types.is_datetime64_any_dtype),
    )
    return next((kind for kind, test in tests if test(dtype)), "x")


_NUMPY_KINDS = {"b": "b", "i": "i", "u": "i", "f": "f", "c": "n", "O": "O", "M": "M"}
_NUMERIC_KINDS = frozenset("ifn")


def _floats(raw: Any, kind: str) -> npt.NDArray[np.float64]:
    """A numeric or boolean column as a new float64 array, NaN for null."""
    if isinstance(raw, np.ndarray):
        return raw.astype(np.float64)
    if kind == "b":
        return np.array(raw.astype(np.float64), dtype=np.float64)
    return np.array(raw.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def _text_objects(raw: Any) -> npt.NDArray[np.object_]:
    """Pandas text as Python ``str`` or ``None``: already the canonical text layout."""
    missing: Any = None  # the stubs do not admit None, pandas does
    return np.asarray(raw.to_numpy(dtype=object, na_value=missing), dtype=object)


def _isna(raw: Any) -> BoolArray:
    if isinstance(raw, np.ndarray):
        return _pandas.isna(raw)
    return np.asarray(_pandas.required().isna(raw), dtype=bool)


def _no(raw: Any) -> BoolArray:
    return np.zeros(len(raw), dtype=bool)


def _cast_number(raw: Any, integral: bool, bools_are_numbers: bool = False) -> Cast:
    kind = _kind(raw)
    if kind == "b":  # true/false is not a number, unless the column is a bool column
        return (_floats(raw, kind), _no(raw)) if bools_are_numbers else _all_bad(raw, np.float64)
    if kind in _NUMERIC_KINDS:  # integers need no integral check
        return _check_integral(_floats(raw, kind), _no(raw), integral and kind != "i")
    if kind in ("O", "s"):
        objects = raw if kind == "O" else _text_objects(raw)
        values, bad = _numbers_from_objects(objects, bools_are_numbers)
        return _check_integral(values, bad, integral)
    return _all_bad(raw, np.float64)


def _check_integral(values: npt.NDArray[np.float64], bad: BoolArray, integral: bool) -> Cast:
    """Refuse fractional values of an integer column (``values`` is modified in place)."""
    if integral:  # NaN and infinity compare quietly: no floating-point warning to silence
        fractional = np.isfinite(values) & (values != np.floor(values))
        if fractional.any():
            bad = bad | fractional
            values[fractional] = np.nan
    return values, bad


def _is_number(value: Any, bools_are_numbers: bool) -> bool:
    if isinstance(value, bool | np.bool_):
        return bools_are_numbers
    return isinstance(value, int | float | np.number)


def _numbers_from_objects(raw: npt.NDArray[Any], bools_are_numbers: bool) -> Cast:
    ok = np.fromiter(
        (v is None or _is_number(v, bools_are_numbers) for v in raw.tolist()),
        dtype=bool,
        count=len(raw),
    )
    null = _isna(raw)
    values = np.full(len(raw), np.nan)
    good = ok & ~null
    values[good] = raw[good].astype(np.float64)
    return values, ~ok & ~null


def _cast_bool(raw: Any) -> Cast:
    """Booleans, or numbers that are 0 or 1 (JSON ``true`` mixed with nulls included)."""
    if _kind(raw) == "b":
        return _floats(raw, "b"), _no(raw)
    values, bad = _cast_number(raw, integral=True, bools_are_numbers=True)
    not_binary = ~np.isnan(values) & (values != 0) & (values != 1)
    values[not_binary] = np.nan
    return values, bad | not_binary


def _cast_text(raw: Any) -> Cast:
    """Text passes; integers become their decimal text; anything else is refused."""
    kind = _kind(raw)
    if kind == "s":
        return _text_objects(raw), _no(raw)
    if kind == "i":
        return _int_text(raw), _no(raw)
    if kind in ("M", "tz") or (isinstance(raw, np.ndarray) and raw.dtype.kind == "m"):
        return _all_bad(raw, object)  # their object form (Timestamps, integers) is not text
    bad = _no(raw)
    if kind == "f":
        floats = raw if isinstance(raw, np.ndarray) else raw.to_numpy(dtype=np.float64)
        numbers, bad = _check_integral(np.array(floats, dtype=np.float64), bad, True)
        objects: npt.NDArray[Any] = numbers.astype(object)
    elif isinstance(raw, np.ndarray):
        objects = raw if kind == "O" else raw.astype(object)
    else:
        objects = raw.to_numpy(dtype=object)
    if len(objects) > SMALL and _all_text_or_null(objects):
        text = objects.copy()  # only text and nulls: nothing to refuse, all vectorised
        if _pandas.required().api.types.infer_dtype(objects, skipna=False) != "string":
            text[_isna(objects)] = None
        return text, bad
    items = objects.tolist()
    if all(type(v) is str for v in items):  # plain text: nothing to cast or refuse
        return _objects(items), bad
    null = [type(v) is not str and _pandas.is_null(v) for v in items]
    texts = [None if n else _text_or_none(v) for v, n in zip(items, null, strict=True)]
    refused = np.array([t is None for t in texts], dtype=bool) & ~np.array(null, dtype=bool)
    return _objects(texts), bad | refused


def _all_text_or_null(objects: npt.NDArray[Any]) -> bool:
    """Pandas' vectorised test that only text and nulls are present (False without pandas)."""
    pd = _pandas.module
    return pd is not None and pd.api.types.infer_dtype(objects, skipna=True) == "string"


def _int_text(raw: Any) -> npt.NDArray[np.object_]:
    if isinstance(raw, np.ndarray):
        return np.fromiter(map(str, raw.tolist()), dtype=object, count=len(raw))
    text: npt.NDArray[np.object_] = raw.astype(str).to_numpy(dtype=object)  # pandas' ints
    text[_isna(raw)] = None
    return text


def _text_or_none(value: Any) -> str | None:
    """Strings pass; integers become their decimal text; anything else is refused."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return None


def _cast_datetime(raw: Any) -> Cast:
    kind = _kind(raw)
    if kind == "tz":
        return _in_range_ns(np.asarray(raw.tz_convert("UTC").tz_localize(None)))
    if kind == "M":
        return _in_range_ns(raw if isinstance(raw, np.ndarray) else np.asarray(raw.to_numpy()))
    if kind in ("O", "s"):
        objects = raw if kind == "O" else _text_objects(raw)
        lean = _pandas.module is None
        parsed = _parse_plain(objects, lean) if lean or len(objects) <= SMALL else None
        return parsed if parsed is not None else _parse(objects)
    return _all_bad(raw, _NS)


def _in_range_ns(stamps: npt.NDArray[np.datetime64]) -> Cast:
    """Datetimes at nanosecond resolution; a date it cannot hold (year 1, 3000) is refused."""
    if stamps.dtype == _NS:
        return stamps.copy(), np.zeros(len(stamps), dtype=bool)
    outside = _outside_ns(stamps)
    return _in_ns_range(stamps), outside


def _parse(raw: npt.NDArray[Any]) -> Cast:
    """ISO 8601 text, by pandas.

    Numbers are never parsed (pandas would read them as epochs), nor words
    (pandas reads "today" and "now" as the clock); dates outside
    ``datetime64[ns]`` are a type error, not an exception.
    """
    pd = _pandas.required()
    null = _isna(raw)
    text = raw.copy()
    text[_unparsable(raw.tolist())] = None
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    stamps = _in_ns_range(np.asarray(parsed.tz_localize(None)))
    return stamps, np.isnat(stamps) & ~null


def _is_word(value: Any) -> bool:
    return isinstance(value, str) and not value.strip()[:1].isdigit()


def _unparsable(values: list[Any]) -> BoolArray:
    """Which values :func:`_parse` keeps from pandas: numbers and words.

    A column of text and nulls (what JSON bodies give) is tested in one list
    comprehension: a call per value cost ~3 ms of a 1,000-row request.
    """
    if set(map(type, values)) <= _TEXT_OR_NONE:
        words = [v is not None and not v.strip()[:1].isdigit() for v in values]
        return np.array(words, dtype=bool)
    return np.fromiter(
        (isinstance(v, int | float | np.number) or _is_word(v) for v in values),
        dtype=bool,
        count=len(values),
    )


def _in_ns_range(values: npt.NDArray[np.datetime64]) -> npt.NDArray[np.datetime64]:
    """Nanoseconds, NaT for what they cannot hold (pandas may parse to coarser units).

    The bounds are compared in the values' own unit: comparing with a bound in
    nanoseconds would convert the values first, and wrap the year 1 round to 1754.
    """
    if values.dtype == _NS:
        return values
    kept = values.copy()
    kept[_outside_ns(values)] = np.datetime64("NaT")
    return kept.astype(_NS)


def _outside_ns(values: npt.NDArray[np.datetime64]) -> BoolArray:
    """The values nanoseconds cannot hold, compared in the values' own (coarser) unit."""
    unit, count = np.datetime_data(values.dtype)
    step = np.timedelta64(count, cast(Any, unit))
    per_unit = int(step.astype("timedelta64[ns]").astype(np.int64))
    if per_unit == 0:  # picoseconds and finer span days around 1970: all inside
        return np.zeros(len(values), dtype=bool)
    limit = (2**63 - 1) // per_unit
    ticks = values.view(np.int64)
    return np.asarray((ticks < -limit) | (ticks > limit), dtype=bool) & ~np.isnat(values)


_ISO = re.compile(
    r" *(\d{4})-(\d\d?)-(\d\d?)"
    r"(?:[T ](\d\d?(?=:)|\d\d)(?::(\d\d?)(?::(\d\d?)(?:\.(\d{1,9}))?)?)?"  # one-digit hour: H:M
    r"(?: ?(?:Z|([+-])(\d\d)(?::?(\d\d))?))?)?",
    re.ASCII,  # Python's \d also matches Arabic-Indic and full-width digits; pandas does not
)
"""ISO 8601's extended form: RFC 3339, and the variants pandas reads the same way."""
_YEARS = range(1678, 2262)
"""Years whose every instant, whatever its offset, fits in nanoseconds."""
_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_DAY = _EPOCH.toordinal()
_NAT_NS = np.iinfo(np.int64).min
_NS_RANGE = range(-(2**63) + 1, 2**63)


def _parse_plain(raw: npt.NDArray[Any], final: bool) -> Cast | None:
    """:func:`_parse` for text in ISO 8601's extended form, without pandas.

    Each value is read by the pattern and Python's calendar, to the same
    nanosecond pandas gives (tests compare them form by form), without its
    fixed cost for a few rows. Another form returns ``None`` so pandas reads
    the column, unless ``final`` (the lean install): the value is then
    refused as not a datetime. Python dates and datetimes (an Arrow body's)
    are read too; any other value returns ``None``.
    """
    stamps: list[int] = []
    bad: list[bool] = []
    for value in raw.tolist():
        if type(value) is not str and _pandas.is_null(value):
            stamps.append(_NAT_NS)
            bad.append(False)
            continue
        if isinstance(value, str):
            match = _ISO.fullmatch(value)
            if match is None and not (final or _is_word(value)):
                return None
            if match is not None and not final and int(match.group(1)) not in _YEARS:
                return None  # near the ends of the range pandas' answer depends on the column
            ns = _iso_ns(match) if match is not None else None
        elif isinstance(value, int | float | np.number | np.bool_):  # never epochs
            ns = None
        elif type(value) in _DATES:  # not subclasses: a pandas Timestamp has nanoseconds
            ns = _date_ns(value)
        elif isinstance(value, np.datetime64):  # not NaT: that is null
            stamp, outside = _in_range_ns(np.array([value]))
            ns = None if outside[0] else int(stamp.view(np.int64)[0])
        else:
            return None
        stamps.append(_NAT_NS if ns is None else ns)
        bad.append(ns is None)
    return np.array(stamps, dtype=np.int64).view(_NS), np.array(bad, dtype=bool)


def _iso_ns(match: re.Match[str]) -> int | None:
    """Nanoseconds since the epoch (UTC) of a matched text; ``None`` if no such instant fits."""
    year, month, day, hour, minute, second, fraction, sign, zone_h, zone_m = match.groups()
    try:  # the calendar's checks (a 30th of February), in C: cheaper than a datetime
        days = dt.date(int(year), int(month), int(day)).toordinal() - _EPOCH_DAY
    except ValueError:
        return None
    clock = (int(hour or 0), int(minute or 0), int(second or 0))
    if clock[0] > 23 or clock[1] > 59 or clock[2] > 59:  # no hour 24, no leap second
        return None
    seconds = days * 86_400 + clock[0] * 3_600 + clock[1] * 60 + clock[2]
    local = seconds * 1_000_000_000 + int((fraction or "").ljust(9, "0"))
    if local not in _NS_RANGE:  # refused when the local time is out of range
        return None
    if sign is None:
        return local
    if int(zone_h) > 23 or int(zone_m or 0) > 59:
        return None
    offset_minutes = (int(zone_h) * 60 + int(zone_m or 0)) * (1 if sign == "+" else -1)
    ns = local - offset_minutes * 60_000_000_000
    return ns if ns in _NS_RANGE else None


def _date_ns(value: dt.date) -> int | None:
    """:func:`_iso_ns` of a Python date (midnight) or datetime (a zoned one in UTC)."""
    stamp = value if isinstance(value, dt.datetime) else dt.datetime.combine(value, dt.time())
    offset = stamp.utcoffset()
    shift = 0 if offset is None else offset // dt.timedelta(microseconds=1) * 1_000
    return _epoch_ns(stamp.replace(tzinfo=None), -shift)


def _epoch_ns(naive: dt.datetime, extra_ns: int) -> int | None:
    """Nanoseconds from the epoch to ``naive`` plus ``extra_ns``; ``None`` past their range."""
    delta = naive - _EPOCH
    seconds = delta.days * 86_400 + delta.seconds
    ns = seconds * 1_000_000_000 + delta.microseconds * 1_000 + extra_ns
    return ns if ns in _NS_RANGE else None


def _all_bad(raw: Any, dtype: Any) -> Cast:
    """Nothing in the column can be cast: every value that is not null is refused."""
    fill = {np.float64: np.nan, object: None}.get(dtype, _NAT)
    return np.full(len(raw), fill, dtype=dtype), ~_isna(raw)


_CASTS: dict[ColumnType, Callable[[Any], Cast]] = {
    ColumnType.FLOAT: lambda raw: _cast_number(raw, integral=False),
    ColumnType.INT: lambda raw: _cast_number(raw, integral=True),
    ColumnType.BOOL: _cast_bool,
    ColumnType.CATEGORY: _cast_text,
    ColumnType.STRING: _cast_text,
    ColumnType.DATETIME: _cast_datetime,
}
