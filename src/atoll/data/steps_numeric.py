"""Built-in steps that fill and reshape values: impute, scale, clip, log1p, bucketize.

Everything learned is computed from the finite values of the training rows
only, so the state never holds NaN or infinity and a column with nothing to
learn from is refused at fit time instead of silently filled with a made-up
number.
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import numpy as np

from atoll import _pandas
from atoll.data.steps_base import (
    ColumnData,
    Columns,
    FloatArray,
    Kind,
    Step,
    check_choice,
    column_kind,
    finite_values,
    float_values,
    frequencies,
    is_number,
    nothing_to_learn,
    param_error,
    text_values,
)
from atoll.errors import DataError


class Impute(Step):
    """Fill nulls with a learned statistic or a constant.

    ``mean`` and ``median`` need numeric columns; ``most_frequent`` (ties go
    to the smallest value) and ``constant`` work on categorical columns too.
    """

    name: ClassVar[str] = "impute"
    array_input: ClassVar[bool] = True
    kinds: ClassVar[frozenset[Kind]] = frozenset({"numeric", "categorical"})
    state_keys: ClassVar[tuple[str, ...]] = ("fill",)
    fill_: dict[str, Any]
    STRATEGIES: ClassVar[tuple[str, ...]] = ("mean", "median", "most_frequent", "constant")

    def __init__(self, columns: list[str], strategy: str = "mean", value: Any = None) -> None:
        super().__init__(columns)
        self.strategy = strategy
        self.value = value

    def check_params(self) -> None:
        super().check_params()
        check_choice(self.name, "strategy", self.strategy, self.STRATEGIES)
        if self.strategy != "constant" and self.value is not None:
            raise param_error(self.name, "value", "is only used with strategy 'constant'")
        if self.strategy == "constant" and not (is_number(self.value) or _is_text(self.value)):
            text = f"must be a number or a string; got {self.value!r}"
            raise param_error(self.name, "value", text)

    def fit_column(self, column: str, series: ColumnData) -> dict[str, Any]:
        numeric = column_kind(series.dtype) == "numeric"
        if self.strategy == "constant":
            return {"fill": self._constant(column, numeric)}
        if self.strategy == "most_frequent":
            return {"fill": self._most_frequent(column, series, numeric)}
        return {"fill": self._statistic(column, series, numeric)}

    def _most_frequent(self, column: str, series: ColumnData, numeric: bool) -> Any:
        counted = frequencies(float_values(series) if numeric else text_values(series))
        if not counted:
            raise nothing_to_learn(self.name, column)
        return counted[0][0]

    def _statistic(self, column: str, series: ColumnData, numeric: bool) -> float:
        if not numeric:
            raise DataError(
                f"{self.name}: strategy {self.strategy!r} needs a numeric column; "
                f"{column!r} is categorical (use most_frequent or constant)",
                column=column,
            )
        learn = np.mean if self.strategy == "mean" else np.median
        return float(learn(finite_values(series, self.name, column)))

    def _constant(self, column: str, numeric: bool) -> float | str:
        if numeric != is_number(self.value):
            wanted = "a number" if numeric else "a string"
            raise param_error(self.name, "value", f"must be {wanted} to fill column {column!r}")
        return float(self.value) if numeric else str(self.value)

    def apply_column(self, column: str, series: ColumnData) -> Columns:
        fill = self.fill_[column]
        if self.kinds_[column] == "numeric":
            values = float_values(series)
            return {column: np.where(np.isnan(values), float(fill), values)}
        texts = text_values(series)
        return {column: np.where(_pandas.isna(texts), fill, texts)}


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


class Scale(Step):
    """Centre and divide: ``standard``, ``minmax`` or ``robust``.

    ``standard`` uses the mean and the standard deviation, ``minmax`` the
    minimum and the range, ``robust`` the median and the interquartile range
    (so a few outliers do not squash everything else). A column with zero
    spread is divided by 1, so a constant column becomes zeros, not NaN.
    """

    name: ClassVar[str] = "scale"
    array_input: ClassVar[bool] = True
    state_keys: ClassVar[tuple[str, ...]] = ("center", "spread")
    center_: dict[str, float]
    spread_: dict[str, float]
    METHODS: ClassVar[tuple[str, ...]] = ("standard", "minmax", "robust")

    def __init__(self, columns: list[str], method: str = "standard") -> None:
        super().__init__(columns)
        self.method = method

    def check_params(self) -> None:
        super().check_params()
        check_choice(self.name, "method", self.method, self.METHODS)

    def fit_column(self, column: str, series: ColumnData) -> dict[str, Any]:
        values = finite_values(series, self.name, column)
        if self.method == "standard":
            center, spread = float(np.mean(values)), float(np.std(values))
        elif self.method == "minmax":
            center, spread = float(np.min(values)), float(np.ptp(values))
        else:
            low, center, high = (float(q) for q in np.quantile(values, [0.25, 0.5, 0.75]))
            spread = high - low
        return {"center": center, "spread": spread if spread > 0 else 1.0}

    def apply_column(self, column: str, series: ColumnData) -> Columns:
        values = float_values(series)
        return {column: (values - self.center_[column]) / self.spread_[column]}


class Clip(Step):
    """Bound values by fixed ``lower``/``upper`` or by learned quantiles of the training rows.

    A missing bound is stored as ``None`` and means "unbounded on that side".
    """

    name: ClassVar[str] = "clip"
    array_input: ClassVar[bool] = True
    state_keys: ClassVar[tuple[str, ...]] = ("lower", "upper")
    lower_: dict[str, float | None]
    upper_: dict[str, float | None]

    def __init__(
        self,
        columns: list[str],
        lower: float | None = None,
        upper: float | None = None,
        lower_quantile: float | None = None,
        upper_quantile: float | None = None,
    ) -> None:
        super().__init__(columns)
        self.lower = lower
        self.upper = upper
        self.lower_quantile = lower_quantile
        self.upper_quantile = upper_quantile

    def check_params(self) -> None:
        super().check_params()
        for side in ("lower", "upper"):
            self._check_side(side)
        if all(getattr(self, p) is None for p in self.param_names() if p != "columns"):
            raise param_error(self.name, "lower", "or another bound is needed: nothing to clip")
        low = self.lower if self.lower is not None else self.lower_quantile
        high = self.upper if self.upper is not None else self.upper_quantile
        same_kind = (self.lower is None) == (self.upper is None)
        if low is not None and high is not None and same_kind and low > high:
            raise param_error(self.name, "lower", f"({low}) is above the upper bound ({high})")

    def _check_side(self, side: str) -> None:
        fixed, quantile = getattr(self, side), getattr(self, f"{side}_quantile")
        if fixed is not None and quantile is not None:
            raise param_error(self.name, side, f"and {side}_quantile cannot both be given")
        if fixed is not None and not is_number(fixed):
            raise param_error(self.name, side, f"must be a number; got {fixed!r}")
        if quantile is not None and not (is_number(quantile) and 0 <= quantile <= 1):
            raise param_error(self.name, f"{side}_quantile", f"must be in [0, 1]; got {quantile!r}")

    def fit_column(self, column: str, series: ColumnData) -> dict[str, Any]:
        quantiles = [self.lower_quantile, self.upper_quantile]
        learned: list[float | None] = [None, None]
        if any(q is not None for q in quantiles):
            values = finite_values(series, self.name, column)
            learned = [None if q is None else float(np.quantile(values, q)) for q in quantiles]
        lower = float(self.lower) if self.lower is not None else learned[0]
        upper = float(self.upper) if self.upper is not None else learned[1]
        return {"lower": lower, "upper": upper}

    def apply_column(self, column: str, series: ColumnData) -> Columns:
        lower, upper = self.lower_[column], self.upper_[column]
        low = -np.inf if lower is None else lower
        high = np.inf if upper is None else upper
        return {column: np.clip(float_values(series), low, high)}


class Log1p(Step):
    """``log(1 + max(x, 0))``: compress a long right tail such as income or loan amount.

    Values are clipped at 0 first because log1p is undefined below -1 and
    explodes towards -inf near it: a stray negative value (a refund, a data
    error the schema let through) must not become NaN, which downstream steps
    would read as "missing", nor a huge negative outlier. The columns this is
    meant for are non-negative, where the clip changes nothing.
    """

    name: ClassVar[str] = "log1p"
    array_input: ClassVar[bool] = True

    def apply_column(self, column: str, series: ColumnData) -> Columns:
        return {column: np.log1p(np.maximum(float_values(series), 0.0))}


class Bucketize(Step):
    """Replace a value by the index of its bucket: quantile or uniform bins, or explicit edges.

    ``edges`` are the inner cut points: ``k`` edges make ``k + 1`` buckets and
    bucket ``i`` holds values in ``(edges[i-1], edges[i]]``, so values outside
    the training range still land in the first or last bucket. Duplicate
    quantile edges (heavily tied data) are merged. When ``edges`` is given,
    ``strategy`` and ``bins`` are ignored. NaN stays NaN.
    """

    name: ClassVar[str] = "bucketize"
    array_input: ClassVar[bool] = True
    state_keys: ClassVar[tuple[str, ...]] = ("edges",)
    edges_: dict[str, list[float]]
    STRATEGIES: ClassVar[tuple[str, ...]] = ("quantile", "uniform")

    def __init__(
        self,
        columns: list[str],
        strategy: str = "quantile",
        bins: int = 10,
        edges: list[float] | None = None,
    ) -> None:
        super().__init__(columns)
        self.strategy = strategy
        self.bins = bins
        self.edges = edges

    def check_params(self) -> None:
        super().check_params()
        check_choice(self.name, "strategy", self.strategy, self.STRATEGIES)
        if not (isinstance(self.bins, int) and not isinstance(self.bins, bool) and self.bins >= 2):
            raise param_error(self.name, "bins", f"must be an integer >= 2; got {self.bins!r}")
        if self.edges is not None:
            edges = self.edges
            if not (isinstance(edges, list) and edges and all(is_number(e) for e in edges)):
                raise param_error(self.name, "edges", f"must be a list of numbers; got {edges!r}")
            if any(b <= a for a, b in itertools.pairwise(edges)):
                raise param_error(self.name, "edges", "must be strictly increasing")

    def fit_column(self, column: str, series: ColumnData) -> dict[str, Any]:
        if self.edges is not None:
            return {"edges": [float(e) for e in self.edges]}
        values = finite_values(series, self.name, column)
        inner = np.linspace(0.0, 1.0, self.bins + 1)[1:-1]
        if self.strategy == "quantile":
            edges = np.unique(np.quantile(values, inner))
        else:
            low, high = float(values.min()), float(values.max())
            edges = np.unique(low + inner * (high - low)) if high > low else np.empty(0)
        return {"edges": [float(e) for e in edges]}

    def apply_column(self, column: str, series: ColumnData) -> Columns:
        values = float_values(series)
        edges = np.asarray(self.edges_[column], dtype=np.float64)
        buckets: FloatArray = np.searchsorted(edges, values, side="left").astype(np.float64)
        buckets[np.isnan(values)] = np.nan
        return {column: buckets}
