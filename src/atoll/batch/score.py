"""The one chunk function: rows in, predictions and quarantined rows out.

Every engine runs :func:`score_task` and nothing else, in whatever process
it has. A chunk is validated by the model's schema; rows that break a rule go
to the quarantine with their reasons, the rest are predicted by
:meth:`Predictor.predict_valid`, the same code the server runs after the same
validation, so a row gets the same answer in batch and online. A job that
feeds the prediction log also gets each row's prediction id in its output
and the logged rows' inputs back (:mod:`~atoll.batch.logged`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from atoll.batch.logged import ChunkLog, LogIds, chunk_log
from atoll.batch.model import ModelHandle, predictor_for
from atoll.batch.plan import Columns, Task
from atoll.batch.quarantine import quarantine_table
from atoll.batch.read import parquet_chunk
from atoll.errors import DataError
from atoll.types import ColumnType

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from atoll.model.predictor import Prediction, Predictor
    from atoll.schema import Schema


@dataclass(frozen=True)
class ScoreContext:
    """What every task of a job shares; sent to each worker once.

    ``log`` is set when the job feeds the prediction log.
    """

    handle: ModelHandle
    columns: Columns
    chunk_rows: int
    fail_on_invalid: bool = False
    log: LogIds | None = None


@dataclass(frozen=True, eq=False)
class ChunkResult:
    """One scored chunk: its output rows and, if any row was refused, its quarantine lines.

    ``logged`` holds what the prediction log needs of it when the job feeds the log.
    """

    index: int
    start_row: int
    rows_in: int
    output: pa.Table
    quarantine: pa.Table | None
    rows_quarantined: int
    logged: ChunkLog | None = None


def score_task(context: ScoreContext, task: Task) -> ChunkResult:
    """Score the one chunk of ``task`` (reading it first when it names Parquet row groups)."""
    predictor = predictor_for(context.handle)
    table = task.table
    if table is None:
        table = parquet_chunk(
            Path(task.source), task.row_groups, task.skip, task.n_rows,
            context.columns.read, context.chunk_rows, task.label,
        )  # fmt: skip
    return score_chunk(predictor, context, table, task.chunk, task.start_row)


def score_chunk(
    predictor: Predictor, context: ScoreContext, table: pa.Table, index: int, start_row: int
) -> ChunkResult:
    """Validate, quarantine and predict one chunk whose first row is ``start_row``."""
    started = time.perf_counter()
    frame = typed_frame(table, context.columns.validate, predictor.schema)
    validated = predictor.schema.validate(frame, "predict")
    _check_structure(validated.report.violations, index)
    invalid = validated.invalid_rows
    n_invalid = int(np.count_nonzero(invalid))
    quarantine = None
    if n_invalid:
        if context.fail_on_invalid:
            raise _first_invalid(predictor.schema, frame, invalid, start_row)
        quarantine = quarantine_table(predictor.schema, frame, invalid, start_row)
    valid = ~invalid
    columns = validated.columns
    if n_invalid:
        columns = {name: values[valid] for name, values in columns.items()}
    prediction = predictor.predict_valid(columns) if n_invalid < len(frame) else None
    rows = np.flatnonzero(valid) + start_row
    kept = table.filter(valid) if n_invalid else table
    output = output_table(predictor, context, kept, rows, prediction)
    logged = None
    if context.log is not None:
        seconds = time.perf_counter() - started
        logged = chunk_log(context.log, frame, valid, rows, seconds)
    return ChunkResult(index, start_row, table.num_rows, output, quarantine, n_invalid, logged)


def typed_frame(table: pa.Table, names: tuple[str, ...], schema: Schema) -> pd.DataFrame:
    """The columns to validate as a frame; text in number columns parsed as numbers.

    CSV chunks arrive as text. A column whose every cell is a number is cast
    by Arrow; one with a bad cell is parsed cell by cell as
    :func:`atoll.data.sources.read_frame` does, so validation names exactly
    the bad rows.
    """
    import pyarrow as pa

    from atoll.data.sources import parse_numbers

    typed: dict[str, Any] = {}
    cell_by_cell = []
    for name in names:
        column = table.column(name)
        kind = schema.columns[name].type
        if kind.is_numeric and _is_text(column.type):
            cast = _cast_numbers(column, kind)
            if cast is None:
                cell_by_cell.append(name)
            else:
                column = cast
        typed[name] = column
    frame: pd.DataFrame = pa.table(typed).to_pandas(use_threads=False)
    for name in cell_by_cell:
        frame[name] = parse_numbers(frame[name])
    return frame


def _is_text(kind: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _cast_numbers(column: pa.ChunkedArray, kind: ColumnType) -> pa.ChunkedArray | None:
    """A text column cast to numbers by Arrow, or None when one of its cells is not one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    targets = {
        ColumnType.BOOL: [pa.bool_(), pa.float64()],
        ColumnType.INT: [pa.int64(), pa.float64()],
    }.get(kind, [pa.float64()])
    for target in targets:
        try:
            cast: pa.ChunkedArray = pc.cast(column, target)
        except pa.ArrowInvalid:
            continue
        return cast
    return None


def _check_structure(violations: list[Any], index: int) -> None:
    """Column-level problems were ruled out by the plan; meeting one is a bug in the input."""
    for violation in violations:
        if violation.rule in ("missing_column", "unexpected_column"):
            raise DataError(
                f"chunk {index}: column {violation.column}: {violation.message}",
                column=violation.column,
            )


def _first_invalid(
    schema: Schema, frame: pd.DataFrame, invalid: np.ndarray, start_row: int
) -> DataError:
    first = np.zeros_like(invalid)
    first[np.flatnonzero(invalid)[0]] = True
    line = quarantine_table(schema, frame, first, start_row).to_pylist()[0]
    return DataError(
        f"row {line['row']}, column {line['column']}: {line['reason']} "
        f"(value {line['value']!r}); --fail-on-invalid stops at the first invalid row",
        row=line["row"],
        column=line["column"],
    )


def output_table(
    predictor: Predictor,
    context: ScoreContext,
    kept: pa.Table,
    rows: np.ndarray,
    prediction: Prediction | None,
) -> pa.Table:
    """Passthrough columns as read, ``row``, ``prediction``, ``probability_<class>``, version.

    A job that feeds the prediction log gets ``prediction_id`` after ``row``.
    """
    import pyarrow as pa

    data: dict[str, Any] = {name: kept.column(name) for name in context.columns.passthrough}
    data["row"] = pa.array(rows, pa.int64())
    if context.log is not None:
        data["prediction_id"] = context.log.ids(rows)
    label = label_type(predictor)
    if prediction is None:
        data["prediction"] = pa.array([], label)
    else:
        data["prediction"] = pa.array(prediction.predictions).cast(label)
    if predictor.task.is_classification:
        probabilities = prediction.probabilities if prediction is not None else None
        for position, name in enumerate(predictor.classes):
            values: Any = probabilities[:, position] if probabilities is not None else []
            data[f"probability_{name}"] = pa.array(values, pa.float64())
    data["model_version"] = pa.array(np.full(len(rows), context.handle.version), pa.int64())
    return pa.table(data)


def label_type(predictor: Predictor) -> pa.DataType:
    """The type of the ``prediction`` column, the same for every chunk (an empty one too)."""
    import pyarrow as pa

    if not predictor.task.is_classification:
        return pa.float64()
    return pa.array(np.array(predictor.classes).tolist()).type
