"""Built-in steps that turn categories into numbers: onehot and ordinal.

Both learn their categories in one deterministic order (descending training
frequency, ties by value) and give every value they did not learn a fixed,
documented place, because at prediction time new categories and nulls always
arrive sooner or later and must never raise or shift other columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from atoll.data.steps_base import (
    NULL,
    UNSEEN,
    ColumnData,
    Columns,
    FloatArray,
    IntArray,
    Kind,
    Step,
    category_codes,
    category_positions,
    check_string_list,
    frequencies,
    is_number,
    param_error,
    text_values,
)

UNKNOWN_BUCKET = "__unknown__"
MISSING_BUCKET = "__missing__"


@dataclass(frozen=True)
class _Lookup:
    """What applying one column needs of its learned categories, worked out once.

    For the one row of an online request, building these on every call was a
    third of the step's time.
    """

    categories: list[Any]
    """The learned list these were made from: a refit learns a new one."""
    positions: dict[Any, int]
    outputs: list[str]
    """Onehot's output column names."""
    buckets: IntArray
    """Onehot's output row for each code; UNSEEN (-1) and NULL (-2) index it from the end."""


class _CategoryStep(Step):
    """Shared by onehot and ordinal: categorical columns, one learned category list each."""

    kinds: ClassVar[frozenset[Kind]] = frozenset({"categorical"})
    state_keys: ClassVar[tuple[str, ...]] = ("categories",)
    categories_: dict[str, list[Any]]

    def __init__(self, columns: list[str]) -> None:
        super().__init__(columns)
        self._lookups: dict[str, _Lookup] = {}

    def codes(self, column: str, series: ColumnData) -> Any:
        """Each row's position among the learned categories, or UNSEEN / NULL."""
        return category_codes(text_values(series), self.lookup(column).positions)

    def lookup(self, column: str) -> _Lookup:
        """The column's lookup, remade only when its learned categories changed."""
        categories = self.categories_[column]
        found = self._lookups.get(column)
        if found is None or found.categories is not categories:
            known = len(categories)
            buckets = np.arange(known + 2)
            buckets[[UNSEEN, NULL]] = (known, known + 1)
            names = [*categories, UNKNOWN_BUCKET, MISSING_BUCKET]
            outputs = [f"{column}={value}" for value in names]
            found = _Lookup(categories, category_positions(categories), outputs, buckets)
            self._lookups[column] = found
        return found


class OneHot(_CategoryStep):
    """One float 0/1 column per learned category, plus an unknown and a missing bucket.

    Columns are named ``"{col}={value}"``; unseen values go to
    ``"{col}=__unknown__"`` and nulls to ``"{col}=__missing__"``. Both buckets
    always exist, so the output columns never depend on the rows applied.
    ``max_categories`` keeps the most frequent ones; ``min_frequency`` (a count,
    or a fraction of the training rows when below 1) drops rare ones; what is
    dropped lands in the unknown bucket.
    """

    name: ClassVar[str] = "onehot"
    array_input: ClassVar[bool] = True

    def __init__(
        self,
        columns: list[str],
        max_categories: int | None = None,
        min_frequency: float | None = None,
    ) -> None:
        super().__init__(columns)
        self.max_categories = max_categories
        self.min_frequency = min_frequency

    def check_params(self) -> None:
        super().check_params()
        top = self.max_categories
        if top is not None and not (isinstance(top, int) and is_number(top) and top >= 1):
            raise param_error(self.name, "max_categories", f"must be an integer >= 1; got {top!r}")
        least = self.min_frequency
        if least is not None and not (is_number(least) and least > 0):
            text = f"must be a positive number; got {least!r}"
            raise param_error(self.name, "min_frequency", text)

    def fit_column(self, column: str, series: ColumnData) -> dict[str, Any]:
        least = self.min_frequency or 0
        threshold = math.ceil(least * len(series)) if least < 1 else least
        kept = [value for value, count in frequencies(text_values(series)) if count >= threshold]
        return {"categories": kept[: self.max_categories]}

    def column_outputs(self, column: str) -> list[str]:
        return list(self.lookup(column).outputs)

    def apply_column(self, column: str, series: ColumnData) -> Columns:
        lookup = self.lookup(column)
        codes = category_codes(text_values(series), lookup.positions)
        # One row per output column: each is one contiguous array, no copy per column.
        hot = np.zeros((len(lookup.buckets), len(codes)), dtype=np.float64)
        hot[lookup.buckets[codes], np.arange(len(codes))] = 1.0
        return dict(zip(lookup.outputs, hot, strict=True))


class Ordinal(_CategoryStep):
    """Replace a category by its float position: 0..k-1, -1.0 when unseen, NaN when null.

    ``order`` fixes the positions: a list for every column, or a mapping from
    column to list. Columns without one are ordered by descending training
    frequency, ties by value.
    """

    name: ClassVar[str] = "ordinal"
    array_input: ClassVar[bool] = True

    def __init__(
        self, columns: list[str], order: list[str] | dict[str, list[str]] | None = None
    ) -> None:
        super().__init__(columns)
        self.order = order

    def check_params(self) -> None:
        super().check_params()
        if isinstance(self.order, dict):
            stray = sorted(set(self.order) - set(self.columns))
            if stray:
                raise param_error(self.name, "order", f"names columns not in 'columns': {stray}")
            for column, order in self.order.items():
                check_string_list(self.name, f"order.{column}", order)
        elif self.order is not None:
            check_string_list(self.name, "order", self.order)

    def fit_column(self, column: str, series: ColumnData) -> dict[str, Any]:
        order = self.order.get(column) if isinstance(self.order, dict) else self.order
        if order is not None:
            return {"categories": list(order)}
        return {"categories": [value for value, _ in frequencies(text_values(series))]}

    def apply_column(self, column: str, series: ColumnData) -> Columns:
        codes: FloatArray = self.codes(column, series).astype(np.float64)
        codes[codes == NULL] = np.nan
        return {column: codes}
