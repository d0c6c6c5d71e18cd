"""The wrangling step contract, and the helpers every built-in step shares.

A step runs twice in a model's life: at training time on the training rows and
at prediction time, possibly one row at a time, inside the server. Both runs
must give the same numbers, so a step keeps everything it learned as plain
JSON (never pickle: a model package must be safe to open) and ``apply`` is a
pure, vectorised function of the learned state and the rows it is given.

Steps work column by column: a subclass says which kinds of column it accepts
(``kinds``), what it learns from one column (:meth:`Step.fit_column`) and what
one column becomes (:meth:`Step.apply_column`). The base class owns the rest
(parameter introspection, column checks, state round trips, rebuilding the
frame), so no built-in step repeats it.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, Self, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from atoll.errors import DataError, NotFittedError, PackageError, SpecError

Kind = Literal["numeric", "categorical", "datetime", "other"]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
Columns = dict[str, FloatArray | npt.NDArray[Any]]

UNSEEN = -1
"""Code of a non-null category the step did not learn."""
NULL = -2
"""Code of a null category value."""


def column_kind(dtype: Any) -> Kind:
    """What a column of ``dtype`` holds (the canonical layout makes the dtype exact)."""
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return "other" if pd.api.types.is_complex_dtype(dtype) else "numeric"
    if pd.api.types.is_object_dtype(dtype) or isinstance(
        dtype, pd.StringDtype | pd.CategoricalDtype
    ):
        return "categorical"
    return "other"


def float_values(series: pd.Series[Any]) -> FloatArray:
    """A numeric column as float64, NaN for null, whatever numeric dtype it arrived in."""
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def text_values(series: pd.Series[Any]) -> npt.NDArray[np.object_]:
    """A categorical column as an object array holding values or ``None``."""
    return series.to_numpy(dtype=object, na_value=cast(Any, None))


def finite_values(series: pd.Series[Any], step: str, column: str) -> FloatArray:
    """The finite values to learn from; a column without any cannot be learned from."""
    values = float_values(series)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise nothing_to_learn(step, column)
    return values


def nothing_to_learn(step: str, column: str) -> DataError:
    """A column that is all null at fit time: any learned fill or bound would be made up."""
    text = f"{step}: column {column!r} has no non-null values to learn from"
    return DataError(text, column=column)


def frequencies(values: npt.NDArray[Any]) -> list[tuple[Any, int]]:
    """Non-null values with their counts, by descending count then value (deterministic)."""
    codes, uniques = pd.factorize(values)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    pairs = [(_plain(value), int(count)) for value, count in zip(uniques, counts, strict=True)]
    return sorted(pairs, key=lambda pair: (-pair[1], pair[0]))


def category_codes(values: npt.NDArray[Any], categories: Sequence[Any]) -> IntArray:
    """Position of each value in ``categories``; :data:`UNSEEN` or :data:`NULL` otherwise.

    Rows are factorised (vectorised), then only the distinct values are looked
    up in a dict: that is faster than any pandas lookup for one row (online
    scoring) and for many, and unlike ``pd.Categorical(values, categories=...)``
    it is not deprecated for values outside the categories.
    """
    codes, uniques = pd.factorize(values)
    positions = {value: index for index, value in enumerate(categories)}
    found = np.fromiter(
        (positions.get(value, UNSEEN) for value in uniques), dtype=np.intp, count=len(uniques)
    )
    found = np.append(found, NULL)  # factorize codes a null -1: it picks the appended NULL
    return np.asarray(found[codes], dtype=np.intp)


def to_json(value: Any) -> Any:
    """Plain JSON types; a non-finite float becomes ``None`` (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [to_json(item) for item in value]
    value = _plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python scalar JSON knows."""
    return value.item() if isinstance(value, np.generic) else value


def param_error(step: str, param: str, text: str) -> SpecError:
    """A :class:`SpecError` naming the parameter; the wrangler adds the spec path."""
    return SpecError(f"step {step!r}: parameter {param!r} {text}", problems=[(param, None, text)])


def check_choice(step: str, param: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise param_error(step, param, f"must be one of {', '.join(choices)}; got {value!r}")


def is_number(value: Any) -> bool:
    """A finite int or float; bools are refused because YAML ``yes`` is not a number."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_string_list(step: str, param: str, value: Any, *, allow_empty: bool = False) -> None:
    """A list of distinct strings (column names, categories, parts)."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise param_error(step, param, f"must be a list of strings; got {value!r}")
    if not value and not allow_empty:
        raise param_error(step, param, "must not be empty")
    repeated = sorted(item for item, count in Counter(value).items() if count > 1)
    if repeated:
        raise param_error(step, param, f"repeats {', '.join(map(repr, repeated))}")


def replace_columns(frame: pd.DataFrame, replaced: Mapping[str, Columns]) -> pd.DataFrame:
    """A new frame where each key of ``replaced`` gives way, in place, to its new columns."""
    if all(list(new) == [old] for old, new in replaced.items()):
        out = frame.copy(deep=False)  # copy-on-write: the caller's frame is never touched
        for old, new in replaced.items():
            out[old] = _series(new[old], frame.index)
        return out
    data: dict[str, Any] = {}
    for name in frame.columns:
        for new_name, values in replaced.get(name, {name: frame[name]}).items():
            if new_name in data or (new_name != name and new_name in frame.columns):
                raise DataError(f"output column {new_name!r} already exists", column=new_name)
            data[new_name] = _series(values, frame.index)
    # copy=False keeps one block per column: consolidating would copy every column, on
    # every step, and copy-on-write already protects the caller's frame.
    return pd.DataFrame(data, index=frame.index, copy=False)


def _series(values: npt.NDArray[Any] | pd.Series[Any], index: pd.Index) -> pd.Series[Any]:
    """An array as a column on ``index``, keeping its dtype.

    Pandas would otherwise turn an object array of strings into its ``str`` dtype,
    breaking the canonical layout; sharing the frame's own index object means
    no alignment happens, even when the index has duplicates.
    """
    if isinstance(values, pd.Series):
        return values
    return pd.Series(values, index=index, dtype=values.dtype, copy=False)


class Step(ABC):
    """One fitted, JSON-serialisable transformation of some columns.

    Follows scikit-learn's estimator contract: ``__init__`` only stores its
    arguments (so :meth:`get_params` can read them back for a state file),
    ``fit`` validates them and learns state into attributes ending in ``_``.

    Subclasses set ``name`` (the ``step:`` key in ``atoll.yaml``), ``kinds``
    (the column kinds they accept) and ``state_keys`` (what ``fit_column``
    returns per column), and override :meth:`fit_column`, :meth:`apply_column`
    and, if they rename or expand columns, :meth:`column_outputs`.
    """

    name: ClassVar[str]
    kinds: ClassVar[frozenset[Kind]] = frozenset({"numeric"})
    state_keys: ClassVar[tuple[str, ...]] = ()
    kinds_: dict[str, Kind]

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns

    @classmethod
    def param_names(cls) -> list[str]:
        """Constructor arguments, read from the signature like scikit-learn does."""
        skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        parameters = inspect.signature(cls.__init__).parameters.values()
        return [p.name for p in parameters if p.name != "self" and p.kind not in skip]

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, unchanged: ``type(self)(**get_params())`` is a twin."""
        return {name: getattr(self, name) for name in self.param_names()}

    def check_params(self) -> None:
        """Raise :class:`SpecError` naming the first invalid parameter."""
        check_string_list(self.name, "columns", self.columns)

    def fit(self, frame: pd.DataFrame) -> Self:
        """Validate the parameters, then learn each column's state from ``frame``."""
        self.check_params()
        series = {column: self._checked_column(frame, column, None) for column in self.columns}
        learned = {column: self.fit_column(column, values) for column, values in series.items()}
        # Only now, with every column learned, does the step count as fitted.
        for key in self.state_keys:
            setattr(self, f"{key}_", {column: learned[column][key] for column in self.columns})
        self.kinds_ = {column: column_kind(values.dtype) for column, values in series.items()}
        return self

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A new frame with this step's columns transformed; ``frame`` is not modified."""
        self._check_fitted()
        replaced = {}
        for column in self.columns:
            series = self._checked_column(frame, column, self.kinds_[column])
            replaced[column] = self.apply_column(column, series)
        return replace_columns(frame, replaced)

    def fit_column(self, column: str, series: pd.Series[Any]) -> dict[str, Any]:
        """What to remember about one column: one value per name in ``state_keys``."""
        return {}

    @abstractmethod
    def apply_column(self, column: str, series: pd.Series[Any]) -> Columns:
        """The columns that replace ``column``, as arrays named by :meth:`column_outputs`."""

    def column_outputs(self, column: str) -> list[str]:
        """Names of the columns that replace ``column`` (itself, unless overridden)."""
        return [column]

    def output_columns(self, input_columns: list[str]) -> list[str]:
        """The columns :meth:`apply` returns for a frame with ``input_columns``."""
        self._check_fitted()
        mine = set(self.columns)
        return [out for col in input_columns for out in self._outputs_of(col, mine)]

    def _outputs_of(self, column: str, mine: set[str]) -> list[str]:
        return self.column_outputs(column) if column in mine else [column]

    def to_state(self) -> dict[str, Any]:
        """Everything ``fit`` learned, as plain JSON (``None`` where a float is not finite)."""
        self._check_fitted()
        state = {key: getattr(self, f"{key}_") for key in ("kinds", *self.state_keys)}
        return dict(to_json(state))

    @classmethod
    def from_state(cls, params: dict[str, Any], state: dict[str, Any]) -> Self:
        """Rebuild a fitted step from :meth:`get_params` and :meth:`to_state` output."""
        step = cls(**params)
        step.check_params()
        for key in ("kinds", *cls.state_keys):
            value = state.get(key)
            if not isinstance(value, dict) or set(value) != set(step.columns):
                raise PackageError(f"step {cls.name!r}: state {key!r} does not match its columns")
            setattr(step, f"{key}_", value)
        return step

    def _check_fitted(self) -> None:
        if not hasattr(self, "kinds_"):
            raise NotFittedError(f"step {self.name!r} is not fitted: call fit() first")

    def _checked_column(
        self, frame: pd.DataFrame, column: str, expected: str | None
    ) -> pd.Series[Any]:
        """The column, if present and of an accepted kind (the same as at fit time)."""
        if column not in frame.columns:
            raise DataError(f"{self.name}: column {column!r} is missing", column=column)
        series = frame[column]
        kind = column_kind(series.dtype)
        if kind not in self.kinds or expected not in (None, kind):
            wanted = expected or " or ".join(sorted(self.kinds))
            raise DataError(
                f"{self.name}: column {column!r} is {kind}; this step needs {wanted}",
                column=column,
            )
        return series
