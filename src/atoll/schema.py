"""The column schema: what a valid row looks like, checked the same way everywhere.

Training, batch scoring and the HTTP server all call :meth:`Schema.validate`,
so a row is accepted or refused by one set of rules. Validation casts only
where the cast cannot change meaning (an int to a float, the integer ``36`` to
the category ``"36"``, an ISO string to a datetime) and names every violated
rule with its column, the first offending row positions and a count.

Validated frames use one canonical layout: numeric and bool columns as
float64 (NaN is null), category and string columns as ``object`` holding
``str`` or ``None``, datetimes as ``datetime64[ns]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, model_validator

from atoll import _pandas
from atoll.errors import SchemaError
from atoll.types import ColumnType, Role

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

Mode = Literal["train", "predict"]
"""``train`` requires every column; ``predict`` requires the features only."""

Data: TypeAlias = "pd.DataFrame | Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]"
"""What validation reads: a frame, records (one mapping per row), or columns
(a mapping of column name to an equal-length list of values, as the HTTP codecs
decode them)."""

MAX_EXAMPLE_ROWS = 5


class UnknownPolicy(StrEnum):
    """What to do with a category value outside ``allowed``."""

    ERROR = "error"
    ALLOW = "allow"


class Column(BaseModel):
    """One column of the schema, as written under ``columns:`` in ``atoll.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ColumnType
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    allowed: list[str] | None = None
    unknown: UnknownPolicy = UnknownPolicy.ERROR
    pii: bool = False
    sensitive: bool = False
    role: Role = Role.FEATURE
    description: str | None = None

    @model_validator(mode="after")
    def _check_rules_fit_the_type(self) -> Column:
        if (self.min is not None or self.max is not None) and not self.type.is_numeric:
            raise ValueError(f"min/max apply to numeric columns, not to type {self.type.value}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.allowed is not None and self.type is not ColumnType.CATEGORY:
            raise ValueError("allowed values apply to category columns only")
        return self


@dataclass(frozen=True, slots=True)
class Violation:
    """One violated rule: which column, how many rows, and the first few positions."""

    rule: str
    column: str
    count: int
    rows: list[int]
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "column": self.column,
            "count": self.count,
            "rows": self.rows,
            "message": self.message,
        }


@dataclass(slots=True)
class ValidationReport:
    """Every violation found in one piece of data; row positions are 0-based."""

    n_rows: int
    violations: list[Violation] = field(default_factory=list)
    n_invalid_rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        """Human text, one line per violation."""
        if self.ok:
            return f"{self.n_rows} rows, no violations"
        lines = [f"  {v.column}: {v.rule}: {v.message}{_where(v)}" for v in self.violations]
        head = f"{self.n_rows} rows, {self.n_invalid_rows} invalid, {len(lines)} violations:"
        return "\n".join([head, *lines])

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "n_rows": self.n_rows,
            "n_invalid_rows": self.n_invalid_rows,
            "violations": [v.to_dict() for v in self.violations],
        }


def _where(violation: Violation) -> str:
    if not violation.rows:
        return ""
    more = ", ..." if violation.count > len(violation.rows) else ""
    rows = ", ".join(str(r) for r in violation.rows)
    return f" ({violation.count} rows: {rows}{more})"


@dataclass(frozen=True, slots=True)
class Validated:
    """The canonical columns, their report, and which rows broke a row rule.

    ``columns`` holds one numpy array per schema column present, in schema
    order; scorers read them directly. :attr:`frame` wraps the same arrays
    (no copy: change neither in place) in a DataFrame on first use: building
    one costs more than validating a few rows, so the prediction path never does.
    """

    columns: dict[str, np.ndarray]
    report: ValidationReport
    invalid_rows: np.ndarray
    n_rows: int
    _frame: list[pd.DataFrame] = field(default_factory=list, init=False, repr=False, compare=False)

    @property
    def frame(self) -> pd.DataFrame:
        """The canonical columns as a frame on a ``RangeIndex`` (built once, then kept)."""
        if not self._frame:
            pandas = _pandas.required()
            data = {
                name: pandas.Series(values, dtype=values.dtype, copy=False)
                for name, values in self.columns.items()
            }
            index = pandas.RangeIndex(self.n_rows)
            self._frame.append(pandas.DataFrame(data, index=index, copy=False))
        return self._frame[0]


@dataclass(frozen=True)
class Schema:
    """The ordered columns of a model's data, and which one is the target."""

    columns: Mapping[str, Column]
    target: str

    @property
    def features(self) -> list[str]:
        """Columns that reach the estimator, in schema order."""
        return [n for n, c in self.columns.items() if c.role is Role.FEATURE]

    @property
    def inputs(self) -> list[str]:
        """Columns a caller may send for prediction: everything but the target."""
        return [n for n in self.columns if n != self.target]

    @cached_property
    def pii(self) -> frozenset[str]:
        """Columns marked ``pii: true``: never logged in clear (asked once per logged answer)."""
        return frozenset(n for n, c in self.columns.items() if c.pii)

    def validate(self, data: Data, mode: Mode) -> Validated:
        """Check ``data`` against every rule; never raises for bad values.

        Args:
            data: a frame; records (one mapping per row, a missing key is
                null); or columns (a mapping of column name to a list or 1-D
                array of values, all the same length). As in a DataFrame built
                from them, lists are typed the way pandas types them and arrays
                keep their dtype, so every form gives the same result.
            mode: ``train`` needs every column; ``predict`` needs the features
                and refuses the target only if it is not in the schema.

        Raises:
            DataError: columns of different lengths, or a column that is not
                a list of values.
        """
        from atoll._validate import validate_frame

        return validate_frame(self, data, mode)

    def check(self, data: Data, mode: Mode) -> pd.DataFrame:
        """Validate and return the canonical frame, or raise :class:`SchemaError`.

        ``data`` is what :meth:`validate` reads; columns of different lengths
        raise :class:`DataError`.
        """
        result = self.validate(data, mode)
        if not result.report.ok:
            raise SchemaError(result.report)
        return result.frame

    def json_schema(self) -> dict[str, Any]:
        """JSON Schema of one input record, for OpenAPI and for callers."""
        properties = {name: _json_type(self.columns[name]) for name in self.inputs}
        return {
            "type": "object",
            "properties": properties,
            "required": self.features,
            "additionalProperties": False,
        }


def _json_type(column: Column) -> dict[str, Any]:
    kinds = {
        ColumnType.FLOAT: {"type": "number"},
        ColumnType.INT: {"type": "integer"},
        ColumnType.BOOL: {"type": "boolean"},
        ColumnType.CATEGORY: {"type": "string"},
        ColumnType.STRING: {"type": "string"},
        ColumnType.DATETIME: {"type": "string", "format": "date-time"},
    }
    out: dict[str, Any] = dict(kinds[column.type])
    if column.min is not None and math.isfinite(column.min):
        out["minimum"] = column.min
    if column.max is not None and math.isfinite(column.max):
        out["maximum"] = column.max
    if column.allowed is not None and column.unknown is UnknownPolicy.ERROR:
        out["enum"] = list(column.allowed)
    if column.nullable:
        out = {"anyOf": [out, {"type": "null"}]}
    if column.description:
        out["description"] = column.description
    return out
