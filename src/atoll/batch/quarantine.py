"""Why each invalid row was refused: one line per row, column and broken rule.

Validation reports every rule it saw broken with a count and the first few
rows, which is all a person reading a report needs; a quarantine file needs
every row. So the invalid rows are validated again, column by column: one
pass gives every row of a column that broke one rule, and only a column that
broke several rules in one chunk is checked row by row to tell them apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from atoll.schema import Schema

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

FIELDS = ("row", "column", "rule", "reason", "value")

Reason = tuple[int, str, str]
"""A position among the rows checked, the rule it broke, and the message."""


def quarantine_table(
    schema: Schema, frame: pd.DataFrame, invalid: np.ndarray, start_row: int
) -> pa.Table:
    """Every broken rule of the ``invalid`` rows of ``frame``, in row then column order.

    Args:
        schema: the model's schema.
        frame: the chunk as it was validated.
        invalid: a boolean mask of the rows that failed validation.
        start_row: the global row number of the chunk's first row.
    """
    import pyarrow as pa

    positions = np.flatnonzero(invalid)
    subset = frame.iloc[positions].reset_index(drop=True)
    lines: list[tuple[int, int, str, str, str | None]] = []
    for order, name in enumerate(subset.columns):
        values = subset[[name]]
        for position, rule, message in _reasons(Schema({name: schema.columns[name]}, ""), values):
            row = int(positions[position]) + start_row
            lines.append((row, order, rule, message, _text(values[name].iloc[position])))
    lines.sort(key=lambda line: (line[0], line[1]))
    columns = list(subset.columns)
    return pa.table(
        {
            "row": pa.array([line[0] for line in lines], pa.int64()),
            "column": pa.array([columns[line[1]] for line in lines], pa.string()),
            "rule": pa.array([line[2] for line in lines], pa.string()),
            "reason": pa.array([line[3] for line in lines], pa.string()),
            "value": pa.array([line[4] for line in lines], pa.string()),
        }
    )


def _reasons(one: Schema, values: pd.DataFrame) -> list[Reason]:
    """Which rows of a one-column frame broke which rule."""
    result = one.validate(values, "predict")
    violations = result.report.violations
    if len(violations) == 1:
        rule, message = violations[0].rule, violations[0].message
        return [(int(p), rule, message) for p in np.flatnonzero(result.invalid_rows)]
    if all(v.count == len(v.rows) for v in violations):  # the report lists every row
        return [(row, v.rule, v.message) for v in violations for row in v.rows]
    reasons: list[Reason] = []
    for position in np.flatnonzero(result.invalid_rows):
        alone = one.validate(values.iloc[[int(position)]].reset_index(drop=True), "predict")
        reasons += [(int(position), v.rule, v.message) for v in alone.report.violations]
    return reasons


def _text(value: Any) -> str | None:
    """The refused value as text (None for a null), for a person to read."""
    import pandas as pd

    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return str(value)
