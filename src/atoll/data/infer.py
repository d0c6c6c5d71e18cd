"""Draft the ``columns:`` section of ``atoll.yaml`` from a data file.

A draft, not a verdict: it guesses types, nullability, small category sets,
likely PII and id columns, and leaves ranges to the user, because ranges
inferred from one sample would refuse tomorrow's legitimate values.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from atoll.schema import Column
from atoll.types import ColumnType, Role

if TYPE_CHECKING:
    import pandas as pd

MAX_ALLOWED_VALUES = 30
"""A text column with at most this many distinct values becomes a category with a closed set."""

_PII_NAMES = re.compile(r"e-?mail|phone|ssn|passport|first_?name|last_?name|full_?name|address")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def infer_columns(frame: pd.DataFrame, target: str | None = None) -> dict[str, Column]:
    """Guess one :class:`Column` per column of ``frame``, in order."""
    return {str(name): _infer(str(name), frame[name], target) for name in frame.columns}


def _infer(name: str, series: pd.Series[Any], target: str | None) -> Column:
    kind = _kind(series)
    distinct = int(series.nunique(dropna=True))
    fields: dict[str, Any] = {"type": kind, "nullable": bool(series.isna().any())}
    if kind is ColumnType.STRING and distinct <= MAX_ALLOWED_VALUES:
        fields["type"] = ColumnType.CATEGORY
        fields["allowed"] = sorted(str(v) for v in series.dropna().unique())
    if name == target:
        fields["role"] = Role.TARGET
    elif kind is ColumnType.STRING and distinct == len(series):
        fields["role"] = Role.ID
    if _looks_like_pii(name, series):
        fields.update(pii=True, role=Role.IGNORE)
    return Column(**fields)


def _kind(series: pd.Series[Any]) -> ColumnType:
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return ColumnType.BOOL
    if pd.api.types.is_integer_dtype(dtype):
        return ColumnType.INT
    if pd.api.types.is_float_dtype(dtype):
        values = series.dropna()
        return (
            ColumnType.INT if len(values) and (values == values.round()).all() else ColumnType.FLOAT
        )
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return ColumnType.DATETIME
    if pd.api.types.infer_dtype(series, skipna=True) == "boolean":  # bools with nulls
        return ColumnType.BOOL
    return ColumnType.STRING


def _looks_like_pii(name: str, series: pd.Series[Any]) -> bool:
    if _PII_NAMES.search(name.lower()):
        return True
    sample = series.dropna().astype(str).head(50)
    return len(sample) > 0 and bool(sample.map(lambda v: bool(_EMAIL.match(v))).mean() > 0.8)
