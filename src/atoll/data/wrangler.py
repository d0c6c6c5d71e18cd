"""The wrangler: the ordered steps that turn validated rows into the estimator's float matrix.

One :class:`Wrangler` object is fitted at training time, written to the model
package as JSON and read back by every scorer (batch or HTTP), so training
and serving run literally the same steps on the same learned state. It owns
the rules at the two ends of the pipeline: only the feature columns go in, in
spec order, and only float64 columns come out, in the order fixed at fit time.

Inside, the columns travel between steps as a :class:`~atoll.data.steps_base.Table`
of numpy arrays; a DataFrame is built only when :meth:`Wrangler.apply` is asked
for one, and :meth:`Wrangler.matrix` (what scorers call) never builds one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import numpy as np
import numpy.typing as npt

from atoll import _pandas
from atoll.data.steps import Step, resolve_step, step_reference
from atoll.data.steps_base import SMALL, Table, column_kind, float_values, to_json
from atoll.errors import DataError, NotFittedError, PackageError, SpecError
from atoll.spec import StepSpec

if TYPE_CHECKING:
    import pandas as pd

Data: TypeAlias = "pd.DataFrame | Mapping[str, Any]"
"""A frame, or canonical columns by name (:attr:`atoll.schema.Validated.columns`)."""

FORMAT = 1
"""Version of the JSON layout written by :meth:`Wrangler.to_state`."""

_ENCODE_HINT = {
    "categorical": "add an 'onehot' or 'ordinal' step for it",
    "datetime": "add a 'datetime_parts' step for it",
    "other": "drop it from the features",
}


class Wrangler:
    """Feature columns in, a float64 frame (or matrix) out, through fitted steps.

    Attributes:
        steps: the steps, applied in order, each to the previous one's output.
        features: the input columns, in order; other columns are ignored.
        feature_names_: the output columns, known after :meth:`fit`.
    """

    feature_names_: list[str]

    def __init__(self, steps: list[Step], features: list[str]) -> None:
        self.steps = list(steps)
        self.features = list(features)

    @classmethod
    def from_spec(
        cls, steps: Sequence[StepSpec], features: list[str], allow_imports: list[str]
    ) -> Wrangler:
        """Build the unfitted steps of ``atoll.yaml``'s ``features:`` list.

        Raises:
            SpecError: naming ``features[i].step``, ``features[i].columns`` or
                ``features[i].<param>`` for an unknown step, a column that is
                not a feature, or a missing, unknown or invalid parameter.
        """
        built = [
            _step_from_spec(f"features[{i}]", spec, features, allow_imports)
            for i, spec in enumerate(steps)
        ]
        return cls(built, features)

    def fit(self, frame: Data) -> Wrangler:
        """Fit each step on the previous one's output; every column left must be numeric."""
        current = _feature_table(frame, self.features)
        for step in self.steps:
            current = step.fit(current).apply_table(current)
        self.feature_names_ = [str(name) for name in _as_floats(current, fitting=True)]
        return self

    def apply(self, frame: Data) -> pd.DataFrame:
        """The float64 features of ``frame``'s rows, columns in ``feature_names_`` order."""
        self._check_fitted()
        table = _feature_table(frame, self.features)
        out = self._floats(table)
        return Table(out, table.n_rows, table.index).frame(inputs=table)

    def matrix(self, frame: Data) -> npt.NDArray[np.float64]:
        """:meth:`apply` as the C-contiguous float64 2-D array estimators want.

        Built straight from the steps' arrays: no DataFrame in between.
        """
        self._check_fitted()
        table = _feature_table(frame, self.features)
        columns = list(self._floats(table).values())
        if not columns or table.n_rows > SMALL:  # one strided copy per column
            matrix = np.empty((table.n_rows, len(columns)), dtype=np.float64)
            for j, values in enumerate(columns):
                matrix[:, j] = values
            return matrix
        # for a few rows, two whole-array copies in C beat a Python loop over the columns
        return np.ascontiguousarray(np.array(columns, dtype=np.float64).T)

    def _check_fitted(self) -> None:
        if not hasattr(self, "feature_names_"):
            raise NotFittedError("the wrangler is not fitted: call fit() first")

    def _floats(self, table: Table) -> dict[str, npt.NDArray[np.float64]]:
        for step in self.steps:
            table = step.apply_table(table)
        out = _as_floats(table, fitting=False)
        if list(out) != self.feature_names_:
            raise DataError(
                f"the steps produced columns {list(out)}, "
                f"but were fitted to produce {self.feature_names_}"
            )
        return out

    def to_state(self) -> dict[str, Any]:
        """Everything needed to rebuild this fitted wrangler, as plain JSON."""
        self._check_fitted()
        return {
            "format": FORMAT,
            "features": list(self.features),
            "feature_names": list(self.feature_names_),
            "steps": [_step_state(step) for step in self.steps],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], allow_imports: list[str]) -> Wrangler:
        """Rebuild a fitted wrangler from :meth:`to_state` output.

        User steps are imported only from ``allow_imports``: a package cannot
        grant itself trust.

        Raises:
            PackageError: the state is not a wrangler state atoll can read.
            SpecError: a step's import path is not allowed or cannot be imported.
        """
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise PackageError(f"not a wrangler state of format {FORMAT}")
        try:
            steps = [
                _step_from_state(i, entry, allow_imports) for i, entry in enumerate(state["steps"])
            ]
            wrangler = cls(steps, list(state["features"]))
            wrangler.feature_names_ = [str(name) for name in state["feature_names"]]
        except (KeyError, TypeError) as exc:
            raise PackageError(f"malformed wrangler state: {exc!r}") from exc
        return wrangler


def _spec_error(field: str, text: str) -> SpecError:
    return SpecError(f"{field}: {text}", problems=[(field, None, text)])


def _step_from_spec(
    field: str, spec: StepSpec, features: list[str], allow_imports: list[str]
) -> Step:
    kind = resolve_step(spec.step, allow_imports, f"{field}.step")
    if spec.columns is None:
        raise _spec_error(f"{field}.columns", "a step needs the list of columns it reads")
    strays = [column for column in spec.columns if column not in features]
    if strays:
        text = f"not feature columns: {', '.join(strays)} (features: {', '.join(features)})"
        raise _spec_error(f"{field}.columns", text)
    step = _construct(field, kind, list(spec.columns), spec.params)
    try:
        step.check_params()
    except SpecError as exc:
        problems = [(f"{field}.{param}", line, text) for param, line, text in exc.problems]
        raise SpecError(f"{field}: {exc.message}", problems=problems) from None
    return step


def _construct(field: str, kind: type[Step], columns: list[str], params: dict[str, Any]) -> Step:
    """``kind(columns, **params)``; a constructor that refuses the parameters is a spec error."""
    try:
        return kind(columns, **params)
    except TypeError as exc:
        unknown = sorted(set(params) - set(kind.param_names()))
        takes = ", ".join(name for name in kind.param_names() if name != "columns") or "nothing"
        reason = f"unknown parameters {unknown}" if unknown else str(exc)
        raise _spec_error(field, f"step {kind.name!r}: {reason}; it takes: {takes}") from None


def _step_state(step: Step) -> dict[str, Any]:
    params = {name: value for name, value in step.get_params().items() if name != "columns"}
    return {
        "step": step_reference(step),
        "columns": list(step.columns),
        "params": to_json(params),
        "state": step.to_state(),
    }


def _step_from_state(index: int, entry: dict[str, Any], allow_imports: list[str]) -> Step:
    kind = resolve_step(entry["step"], allow_imports, f"steps[{index}].step")
    return kind.from_state({"columns": list(entry["columns"]), **entry["params"]}, entry["state"])


def _feature_table(frame: Data, features: list[str]) -> Table:
    """Only the feature columns, in spec order; extra columns are ignored."""
    present = cast("pd.DataFrame", frame).columns if _pandas.is_frame(frame) else frame
    missing = [name for name in features if name not in present]
    if missing:
        raise DataError(f"missing feature columns: {', '.join(missing)}", column=missing[0])
    return Table.of(frame, features)


def _as_floats(table: Table, *, fitting: bool) -> dict[str, npt.NDArray[np.float64]]:
    """Every column as float64, or an error naming the first column that is not numeric."""
    out = {}
    for name, values in table.columns.items():
        if values.dtype != np.float64:
            kind = column_kind(values.dtype)
            if kind != "numeric":
                raise _not_numeric(name, kind, fitting)
            values = float_values(values)
        out[name] = values
    return out


def _not_numeric(name: str, kind: str, fitting: bool) -> SpecError | DataError:
    if fitting:
        text = f"column {name!r} is still {kind} after the last step: {_ENCODE_HINT[kind]}"
        return _spec_error("features", text)
    return DataError(f"column {name!r} is {kind}, but was numeric at fit time", column=name)
