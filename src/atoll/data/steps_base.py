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
columns), so no built-in step repeats it.

Between steps, columns travel as a :class:`Table` of numpy arrays, never as a
DataFrame: for the few rows of an online request, pandas' per-column and
per-frame overhead would cost far more than the arithmetic. Built-in steps
read the arrays directly (``array_input``); a user step gets each column as a
``pandas.Series``, as the contract has always promised.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self, TypeAlias, cast

import numpy as np
import numpy.typing as npt

from atoll import _pandas
from atoll.errors import DataError, NotFittedError, PackageError, SpecError

if TYPE_CHECKING:
    import pandas as pd
    from pandas.api.extensions import ExtensionArray

Kind = Literal["numeric", "categorical", "datetime", "other"]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
Columns = dict[str, FloatArray | npt.NDArray[Any]]
Values: TypeAlias = "npt.NDArray[Any] | ExtensionArray"
"""One column's values: a numpy array, or a pandas extension array (nullable, zoned...)."""
ColumnData: TypeAlias = "Values | pd.Series[Any]"
"""What the helpers below accept: a built-in step's arrays or a user step's Series."""

SMALL = 64
"""Up to this many rows a plain Python loop beats pandas' per-call overhead."""

UNSEEN = -1
"""Code of a non-null category the step did not learn."""
NULL = -2
"""Code of a null category value."""


_NUMPY_KINDS: dict[str, Kind] = {
    "b": "numeric",
    "i": "numeric",
    "u": "numeric",
    "f": "numeric",
    "M": "datetime",
    "O": "categorical",
}


def column_kind(dtype: Any) -> Kind:
    """What a column of ``dtype`` holds (the canonical layout makes the dtype exact)."""
    if isinstance(dtype, np.dtype):  # the same answers as below, without pandas' dispatch
        return _NUMPY_KINDS.get(dtype.kind, "other")
    pd = _pandas.required()  # any other dtype is one of pandas' extension types
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return "other" if pd.api.types.is_complex_dtype(dtype) else "numeric"
    if pd.api.types.is_object_dtype(dtype) or isinstance(
        dtype, pd.StringDtype | pd.CategoricalDtype
    ):
        return "categorical"
    return "other"


def float_values(series: ColumnData) -> FloatArray:
    """A numeric column as float64, NaN for null, whatever numeric dtype it arrived in.

    The result may share memory with the input: treat it as read-only.
    """
    if isinstance(series, np.ndarray):
        if series.dtype == np.float64:
            return cast("FloatArray", series)
        if series.dtype.kind in "biuf":
            return np.asarray(series, dtype=np.float64)
    return np.asarray(_series(series).to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def text_values(series: ColumnData) -> npt.NDArray[np.object_]:
    """A categorical column as an object array holding values or ``None``.

    The result may share memory with the input: treat it as read-only.
    """
    if isinstance(series, np.ndarray) and series.dtype == object:
        null = _other_nulls(series)
        if null is None:
            return series
        texts = series.copy()
        texts[null] = None
        return texts
    return np.asarray(
        _series(series).to_numpy(dtype=object, na_value=cast(Any, None)), dtype=object
    )


def _series(values: ColumnData) -> pd.Series[Any]:
    """A Series of ``values`` (no copy): the general case of the helpers above, pandas only."""
    if _pandas.is_series(values):
        return cast("pd.Series[Any]", values)
    series: pd.Series[Any] = _pandas.required().Series(values, copy=False)
    return series


def _other_nulls(values: npt.NDArray[np.object_]) -> npt.NDArray[np.bool_] | None:
    """Where the nulls are, unless ``None`` is the only one (the canonical layout's null)."""
    if len(values) <= SMALL and all(type(v) is str or v is None for v in values.tolist()):
        return None
    null = _pandas.isna(values)
    return None if all(value is None for value in values[null].tolist()) else null


def finite_values(series: ColumnData, step: str, column: str) -> FloatArray:
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
    codes, uniques = _pandas.required().factorize(values)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    pairs = [(_plain(value), int(count)) for value, count in zip(uniques, counts, strict=True)]
    return sorted(pairs, key=lambda pair: (-pair[1], pair[0]))


def category_codes(values: npt.NDArray[Any], positions: Mapping[Any, int]) -> IntArray:
    """Each value's position (``positions[value]``); :data:`UNSEEN` or :data:`NULL` otherwise.

    ``values`` come from :func:`text_values`, so ``None`` is the only null;
    ``positions`` maps each learned category to its index (see
    :func:`category_positions`). A few rows are looked up one by one in the
    dict; many are factorised first (vectorised) and only the distinct values
    looked up. Both are faster than any pandas lookup, and unlike
    ``pd.Categorical(values, categories=...)`` neither is deprecated for values
    outside the categories. Without pandas every row is looked up in the dict.
    """
    if len(values) <= SMALL or _pandas.module is None:
        return np.fromiter(
            (NULL if v is None else positions.get(v, UNSEEN) for v in values.tolist()),
            dtype=np.intp,
            count=len(values),
        )
    codes, uniques = _pandas.module.factorize(values)
    found = np.fromiter(
        (positions.get(value, UNSEEN) for value in uniques), dtype=np.intp, count=len(uniques)
    )
    found = np.append(found, NULL)  # factorize codes a null -1: it picks the appended NULL
    return np.asarray(found[codes], dtype=np.intp)


def category_positions(categories: Sequence[Any]) -> dict[Any, int]:
    """Each category's index, for :func:`category_codes`."""
    return {value: index for index, value in enumerate(categories)}


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


class Table:
    """Named columns as arrays, in order, all of ``n_rows``: what steps hand each other.

    ``index`` is only kept to label a frame built from the table (and the
    Series a user step receives); the arrays themselves are positional.
    """

    __slots__ = ("_index", "_source", "columns", "n_rows")

    def __init__(self, columns: dict[Any, Any], n_rows: int, index: pd.Index | None = None) -> None:
        self.columns = columns
        self.n_rows = n_rows
        self._index = index
        self._source: pd.DataFrame | None = None

    @classmethod
    def of(
        cls, data: pd.DataFrame | Mapping[Any, Any] | Table, names: Sequence[Any] | None = None
    ) -> Table:
        """A frame's columns (no copy), or a mapping of equal-length arrays, as a table.

        Args:
            data: the columns.
            names: only these columns, in this order (every one must be present).
        """
        if isinstance(data, Table):
            return data if names is None else data.select(names)
        frame = _pandas.is_frame(data)
        labels = list(cast("pd.DataFrame", data).columns if frame else data)
        chosen = labels if names is None else names
        if frame:
            data = cast("pd.DataFrame", data)
            frame_columns = {label: column_values(data[label]) for label in chosen}
            table = cls(frame_columns, len(data), data.index)
            table._source = data
            return table
        columns = {name: _array(data[name]) for name in chosen}
        lengths = {len(values) for values in columns.values()}
        if len(lengths) > 1:
            raise DataError(f"the columns have different lengths: {sorted(lengths)}")
        return cls(columns, lengths.pop() if lengths else 0)

    @property
    def index(self) -> pd.Index:
        """The labels of the rows: the source frame's, else positions (made once)."""
        if self._index is None:
            self._index = _pandas.required().RangeIndex(self.n_rows)
        return self._index

    def select(self, names: Sequence[Any]) -> Table:
        """Only ``names``, in that order."""
        return Table({name: self.columns[name] for name in names}, self.n_rows, self._index)

    def replace(self, replaced: Mapping[Any, Columns]) -> Table:
        """A new table where each key of ``replaced`` gives way, in place, to its new columns."""
        if all(list(new) == [old] for old, new in replaced.items()):
            columns = dict(self.columns)
            for old, new in replaced.items():
                columns[old] = self._checked(old, new[old])
            return Table(columns, self.n_rows, self._index)
        data: dict[Any, Any] = {}
        for name, current in self.columns.items():
            if name not in replaced:  # a clash with it is caught when the clashing column comes
                data[name] = current
                continue
            for new_name, values in replaced[name].items():
                if new_name in data or (new_name != name and new_name in self.columns):
                    raise DataError(f"output column {new_name!r} already exists", column=new_name)
                data[new_name] = self._checked(new_name, values)
        return Table(data, self.n_rows, self._index)

    def _checked(self, name: Any, values: Any) -> Any:
        """A step's output column as an array (a Series is read by position) of the right length."""
        if type(values) is not np.ndarray:
            values = column_values(values) if _pandas.is_series(values) else _array(values)
        if len(values) != self.n_rows:
            raise DataError(
                f"output column {name!r} has {len(values)} values for {self.n_rows} rows",
                column=str(name),
            )
        return values

    def series(self, values: Values) -> pd.Series[Any]:
        """One column as a Series on this table's index, keeping its dtype.

        Pandas would otherwise turn an object array of strings into its ``str``
        dtype, breaking the canonical layout; sharing the table's own index
        object means no alignment happens, even when the index has duplicates.
        """
        pandas = _pandas.required()
        series: pd.Series[Any] = pandas.Series(
            values, index=self.index, dtype=values.dtype, copy=False
        )
        return series

    def frame(self, inputs: Table | None = None) -> pd.DataFrame:
        """The table as a new frame, which writes to it never reach ``inputs``.

        A column passed through unchanged from a frame is that frame's own
        column (pandas copies it on write); from anywhere else it is copied.
        ``copy=False`` keeps one block per column: consolidating would copy every column.
        """
        origin = {id(values): label for label, values in inputs.columns.items()} if inputs else {}
        source = inputs._source if inputs else None
        data: dict[Any, pd.Series[Any]] = {}
        for name, values in self.columns.items():
            label = origin.get(id(values), _NOWHERE)
            if label is not _NOWHERE and source is not None:
                data[name] = source[label]
            else:
                data[name] = self.series(_owned(values, label is not _NOWHERE))
        frame: pd.DataFrame = _pandas.required().DataFrame(data, index=self.index, copy=False)
        return frame


def column_values(series: pd.Series[Any]) -> Values:
    """A Series' values without its index: a numpy array, or its extension array."""
    if isinstance(series.dtype, np.dtype):
        return series.to_numpy()
    values: Values = series.array
    return values


def _array(values: Any) -> Values:
    """A mapping's column as an array: a Series by position, a list of text as objects."""
    if _pandas.is_series(values):
        return column_values(values)
    if hasattr(values, "dtype"):
        return cast("Values", values)
    array = np.asarray(values)
    return array.astype(object) if array.dtype.kind in "US" else array


_NOWHERE = object()
"""Marks a column that is not one of the input's."""


def _owned(values: Any, shared: bool) -> Any:
    writeable = not isinstance(values, np.ndarray) or values.flags.writeable
    return values.copy() if shared or not writeable else values


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
    array_input: ClassVar[bool] = False
    """Whether :meth:`fit_column` and :meth:`apply_column` take arrays instead of Series.

    Built-in steps do, to skip building a Series per column. A subclass that
    overrides either method without setting this in its own body gets Series.
    """
    kinds_: dict[str, Kind]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        overrides = {"fit_column", "apply_column"} & set(vars(cls))
        if overrides and "array_input" not in vars(cls):
            cls.array_input = False

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

    def fit(self, frame: pd.DataFrame | Table) -> Self:
        """Validate the parameters, then learn each column's state from ``frame``."""
        self.check_params()
        table = Table.of(frame)
        values = {column: self._checked_column(table, column, None) for column in self.columns}
        learned = {
            column: self.fit_column(column, self._column_arg(table, found))
            for column, found in values.items()
        }
        # Only now, with every column learned, does the step count as fitted.
        for key in self.state_keys:
            setattr(self, f"{key}_", {column: learned[column][key] for column in self.columns})
        self.kinds_ = {column: column_kind(found.dtype) for column, found in values.items()}
        return self

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A new frame with this step's columns transformed; ``frame`` is not modified."""
        table = Table.of(frame)
        return self.apply_table(table).frame(inputs=table)

    def apply_table(self, table: Table) -> Table:
        """:meth:`apply` between steps: arrays in, arrays out, no frame built."""
        self._check_fitted()
        replaced = {}
        for column in self.columns:
            values = self._checked_column(table, column, self.kinds_[column])
            replaced[column] = self.apply_column(column, self._column_arg(table, values))
        return table.replace(replaced)

    def _column_arg(self, table: Table, values: Values) -> Any:
        """What :meth:`fit_column` and :meth:`apply_column` receive for one column."""
        return values if self.array_input else table.series(values)

    def fit_column(self, column: str, series: pd.Series[Any]) -> dict[str, Any]:
        """What to remember about one column: one value per name in ``state_keys``.

        ``series`` is the column as a Series, or as an array when ``array_input``.
        """
        return {}

    @abstractmethod
    def apply_column(self, column: str, series: pd.Series[Any]) -> Columns:
        """The columns that replace ``column``, as arrays named by :meth:`column_outputs`.

        ``series`` is the column as a Series, or as an array when ``array_input``.
        """

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

    def _checked_column(self, table: Table, column: str, expected: str | None) -> Values:
        """The column, if present and of an accepted kind (the same as at fit time)."""
        if column not in table.columns:
            raise DataError(f"{self.name}: column {column!r} is missing", column=column)
        values: Values = table.columns[column]
        kind = column_kind(values.dtype)
        if kind not in self.kinds or expected not in (None, kind):
            wanted = expected or " or ".join(sorted(self.kinds))
            raise DataError(
                f"{self.name}: column {column!r} is {kind}; this step needs {wanted}",
                column=column,
            )
        return values
