"""The built-in ``datetime_parts`` step: a datetime column becomes numeric calendar parts.

Estimators cannot read timestamps, but they can read the year, the weekday or
the hour, which is where the signal in a date usually lives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from atoll import _pandas
from atoll.data.steps_base import (
    ColumnData,
    Columns,
    FloatArray,
    Kind,
    Step,
    check_string_list,
    param_error,
)

Stamps = npt.NDArray[np.datetime64]

DEFAULT_PARTS = ("year", "month", "day", "dayofweek", "hour")

# Pure numpy calendar arithmetic in the column's own unit: vectorised, as cheap for
# one row as pandas' ``.dt`` accessor is for thousands, and free of its renames.
_PARTS: dict[str, Callable[[Stamps], npt.NDArray[Any]]] = {
    "year": lambda t: t.astype("M8[Y]").astype(np.int64) + 1970,
    "month": lambda t: t.astype("M8[M]").astype(np.int64) % 12 + 1,
    "day": lambda t: (t.astype("M8[D]") - t.astype("M8[M]")).astype(np.int64) + 1,
    # 1970-01-01 was a Thursday (3 when Monday is 0).
    "dayofweek": lambda t: (t.astype("M8[D]").astype(np.int64) + 3) % 7,
    "dayofyear": lambda t: (t.astype("M8[D]") - t.astype("M8[Y]")).astype(np.int64) + 1,
    "hour": lambda t: np.floor((t - t.astype("M8[D]")) / np.timedelta64(1, "h")),
    "minute": lambda t: np.floor((t - t.astype("M8[h]")) / np.timedelta64(1, "m")),
    "epoch_days": lambda t: (t - np.datetime64(0, "D")) / np.timedelta64(1, "D"),
}
PARTS = tuple(_PARTS)


class DatetimeParts(Step):
    """Replace a datetime column by float columns ``"{col}.{part}"``; NaT gives NaN.

    ``parts`` defaults to year, month, day, dayofweek (Monday = 0) and hour;
    ``dayofyear``, ``minute`` and ``epoch_days`` (days since 1970-01-01, with
    the time of day as a fraction) may be asked for too. Nothing is learned.
    """

    name: ClassVar[str] = "datetime_parts"
    array_input: ClassVar[bool] = True
    kinds: ClassVar[frozenset[Kind]] = frozenset({"datetime"})

    def __init__(self, columns: list[str], parts: list[str] | None = None) -> None:
        super().__init__(columns)
        self.parts = parts

    @property
    def chosen_parts(self) -> list[str]:
        """The parts to extract: ``parts``, or the defaults when it is not given."""
        return list(DEFAULT_PARTS) if self.parts is None else list(self.parts)

    def check_params(self) -> None:
        super().check_params()
        if self.parts is not None:
            check_string_list(self.name, "parts", self.parts)
            unknown = [part for part in self.parts if part not in PARTS]
            if unknown:
                raise param_error(
                    self.name, "parts", f"has unknown parts {unknown}; choose from {list(PARTS)}"
                )

    def column_outputs(self, column: str) -> list[str]:
        return [f"{column}.{part}" for part in self.chosen_parts]

    def apply_column(self, column: str, series: ColumnData) -> Columns:
        stamps = _stamps(series)
        missing = np.isnat(stamps)
        values = (_part(stamps, missing, part) for part in self.chosen_parts)
        return dict(zip(self.column_outputs(column), values, strict=True))


def _stamps(series: ColumnData) -> Stamps:
    """The column as naive datetime64 in its own unit (wall-clock time if it has a zone)."""
    if isinstance(series, np.ndarray):
        return np.asarray(series, dtype=np.datetime64)
    pd = _pandas.required()  # a Series, or one of pandas' extension arrays
    column = pd.Series(series, copy=False)
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        column = column.dt.tz_localize(None)
    return np.asarray(column.to_numpy(), dtype=np.datetime64)


def _part(stamps: Stamps, missing: npt.NDArray[np.bool_], part: str) -> FloatArray:
    values = np.asarray(_PARTS[part](stamps), dtype=np.float64)
    values[missing] = np.nan  # NaT has turned into a huge integer in the int-based parts
    return values
