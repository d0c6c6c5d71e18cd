"""Turn the input into an ordered, deterministic list of tasks, checking it before any work.

Files of a glob are taken in sorted order and their columns checked against
the model's schema and against each other first, so a wrong file fails the
job before anything is scored. Every task is one chunk of at most
``chunk_rows`` rows: Parquet tasks name the row groups (or the slice of one
large row group) that workers read themselves; CSV and SQL rows are read
here. Chunk ``i`` and the global row numbers are the same on every run of the
same input.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from atoll._hashing import sha256_bytes
from atoll.batch.read import (
    csv_chunks,
    csv_header,
    first_line,
    parquet_row_groups,
    parquet_schema,
)
from atoll.data.sources import SUFFIXES, fingerprint_files, iter_sql, resolve_files
from atoll.errors import DataError
from atoll.types import Role

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from atoll.schema import Schema

OUTPUT_COLUMNS = ("row", "prediction", "model_version")
"""Columns every output has (and ``probability_<class>`` for classifiers)."""


@dataclass(frozen=True, eq=False)
class Task:
    """One chunk of one source: rows ``start_row`` .. ``start_row + n_rows - 1``.

    Parquet tasks name the row groups the worker reads itself, from row
    ``skip`` of the first of them (a large row group is several tasks), and
    ``source`` is the file's absolute path, as a remote worker needs it; CSV
    and SQL tasks carry their rows in ``table``. ``label`` is the source as
    the user named it, for messages.
    """

    chunk: int
    start_row: int
    n_rows: int
    source: str
    row_groups: tuple[int, ...] = ()
    table: pa.Table | None = None
    skip: int = 0
    label: str | None = None

    def __str__(self) -> str:
        """The task as errors name it."""
        last = self.start_row + self.n_rows - 1
        return f"rows {self.start_row:,}-{last:,} of {self.label or self.source}"


@dataclass(frozen=True)
class Columns:
    """Which input columns are read, which of them are validated, which are passed through."""

    read: tuple[str, ...]
    validate: tuple[str, ...]
    passthrough: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Plan:
    """The checked input: what it is, its fingerprint, its columns and its tasks.

    Attributes:
        kind: ``parquet``, ``csv`` or ``sql``.
        label: the input as the job record shows it (no password).
        rows_total: known up front for Parquet only.
        close: releases what reading the tasks holds (a SQL query's cursor).
    """

    kind: str
    label: str
    fingerprint: str
    columns: Columns
    chunk_rows: int
    rows_total: int | None
    chunks_total: int | None
    make_tasks: Callable[[], Iterator[Task]]
    release: Callable[[], None] = lambda: None

    def tasks(self) -> Iterator[Task]:
        return self.make_tasks()

    def close(self) -> None:
        """Release the input (idempotent): a job that ends early leaves no cursor open."""
        self.release()


def check_columns(
    names: Sequence[str], schema: Schema, passthrough: Sequence[str] | None, where: str
) -> Columns:
    """The columns to read from an input whose header is ``names``.

    Raises:
        DataError: a feature is missing, a column is not in the schema (and not
            passed through), or a passthrough column is absent or would clash
            with an output column.
    """
    present = set(names)
    missing = [name for name in schema.features if name not in present]
    if missing:
        raise DataError(f"{where} lacks the model's feature columns: {', '.join(missing)}")
    kept = list(passthrough) if passthrough is not None else _id_columns(schema, names)
    absent = [name for name in kept if name not in present]
    if absent:
        raise DataError(f"{where} has no column {', '.join(absent)} to pass through")
    clash = [n for n in kept if n in OUTPUT_COLUMNS or n.startswith("probability_")]
    if clash:
        raise DataError(f"passthrough column {', '.join(clash)} clashes with an output column")
    unexpected = [n for n in names if n not in schema.columns and n not in kept]
    if unexpected:
        raise DataError(
            f"{where} has columns that are not in the model's schema: {', '.join(unexpected)}; "
            "drop them, or keep them in the output with --columns-passthrough"
        )
    inputs = set(schema.inputs)
    read = tuple(n for n in names if n in inputs or n in kept)
    return Columns(read, tuple(n for n in read if n in inputs), tuple(kept))


def _id_columns(schema: Schema, names: Sequence[str]) -> list[str]:
    return [n for n in names if n in schema.columns and schema.columns[n].role is Role.ID]


def plan_files(
    pattern: str, schema: Schema, chunk_rows: int, passthrough: Sequence[str] | None
) -> Plan:
    """Plan a CSV or Parquet file, or a glob of them (one format, one set of columns).

    Raises:
        DataError: no such file, an unreadable or empty one, mixed formats or
            columns, or columns that do not fit the model.
    """
    files = resolve_files(pattern)
    kinds = {SUFFIXES[file.suffix.lower()] for file in files}
    if len(kinds) > 1:
        raise DataError(f"{pattern!r} matches both CSV and Parquet files: score one format")
    if kinds == {"parquet"}:
        return _plan_parquet(pattern, files, schema, chunk_rows, passthrough)
    columns = _same_columns(files, [csv_header(f) for f in files], schema, passthrough)

    def tasks() -> Iterator[Task]:
        row = 0
        for task in _csv_tasks(files, columns, chunk_rows):
            row += task.n_rows
            yield task
        if row == 0:
            raise DataError(f"{pattern} holds no rows", file=pattern)

    fingerprint = fingerprint_files(pattern)
    return Plan("csv", pattern, fingerprint, columns, chunk_rows, None, None, tasks)


def _csv_tasks(files: list[Path], columns: Columns, chunk_rows: int) -> Iterator[Task]:
    chunk = row = 0
    for file in files:
        for table in csv_chunks(file, columns.read, chunk_rows):
            yield Task(chunk, row, table.num_rows, str(file), table=table)
            chunk += 1
            row += table.num_rows


def _same_columns(
    files: list[Path],
    headers: list[list[str]],
    schema: Schema,
    passthrough: Sequence[str] | None,
) -> Columns:
    """The first file's columns, after checking that every other file has the same ones."""
    first = headers[0]
    for file, names in zip(files[1:], headers[1:], strict=True):
        if set(names) != set(first):
            odd = sorted(set(names) ^ set(first))
            raise DataError(
                f"{file} has other columns than {files[0]} (they differ in: {', '.join(odd)}); "
                "every file of a glob needs the same columns",
                file=str(file),
            )
    return check_columns(first, schema, passthrough, str(files[0]))


def _plan_parquet(
    pattern: str,
    files: list[Path],
    schema: Schema,
    chunk_rows: int,
    passthrough: Sequence[str] | None,
) -> Plan:
    schemas = [parquet_schema(file) for file in files]
    columns = _same_columns(files, [list(s.names) for s in schemas], schema, passthrough)
    _same_passthrough_types(files, schemas, columns.passthrough)
    tasks = _parquet_tasks(files, [parquet_row_groups(f) for f in files], chunk_rows)
    rows = sum(task.n_rows for task in tasks)
    if rows == 0:
        raise DataError(f"{pattern} holds no rows", file=pattern)
    fingerprint = fingerprint_files(pattern)
    return Plan(
        "parquet", pattern, fingerprint, columns, chunk_rows, rows, len(tasks), tasks.__iter__
    )


def _same_passthrough_types(
    files: list[Path], schemas: list[pa.Schema], passthrough: Sequence[str]
) -> None:
    """Passed-through columns land in one output column: their types must agree."""
    import pyarrow as pa

    for name in passthrough:
        kinds = {str(s.field(name).type) for s in schemas} - {str(pa.null())}
        if len(kinds) > 1:
            raise DataError(
                f"column {name} has different types across {files[0].parent}: "
                f"{', '.join(sorted(kinds))}; every file of a glob needs the same",
                column=name,
            )


def _parquet_tasks(files: list[Path], groups: list[list[int]], chunk_rows: int) -> list[Task]:
    """Small row groups merged up to ``chunk_rows``; a larger one cut into chunks of it.

    The cuts depend on the row-group sizes and ``chunk_rows`` only, so they
    are the same on every run (a resume relies on it).
    """
    tasks: list[Task] = []
    row = 0
    for file, sizes in zip(files, groups, strict=True):
        source = str(file.resolve())
        pending: list[int] = []
        pending_rows = 0
        for index, size in [(i, n) for i, n in enumerate(sizes) if n > 0] + [(-1, 0)]:
            if pending and (index < 0 or pending_rows + size > chunk_rows):
                for skip in range(0, pending_rows, chunk_rows):  # several only for one group
                    n_rows = min(chunk_rows, pending_rows - skip)
                    task = Task(
                        len(tasks), row, n_rows, source, tuple(pending), skip=skip, label=str(file)
                    )
                    tasks.append(task)
                    row += n_rows
                pending, pending_rows = [], 0
            if index >= 0:
                pending.append(index)
                pending_rows += size
    return tasks


def plan_sql(
    url: str, query: str, schema: Schema, chunk_rows: int, passthrough: Sequence[str] | None
) -> Plan:
    """Plan a query: its first rows are fetched here to check the columns before any work.

    Resuming a SQL job assumes the query returns the same rows in the same
    order (give it an ``ORDER BY``): the fingerprint covers the URL and the
    query text, not the rows, so a query whose result changed, or came in
    another order, mixes old rows with new ones on a resume.
    """
    import sqlalchemy as sa

    try:
        shown = sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError as exc:
        raise DataError(f"invalid SQL source URL: {first_line(exc)}") from None
    frames = iter_sql(url, query, batch_rows=chunk_rows)
    try:
        first = _arrow(next(frames), shown)
        columns = check_columns(first.column_names, schema, passthrough, f"the query on {shown}")
    except BaseException:
        _close(frames)
        raise

    def tasks() -> Iterator[Task]:
        chunk, row, table = 0, 0, first
        while True:
            yield Task(chunk, row, table.num_rows, f"the query on {shown}", table=table)
            chunk, row = chunk + 1, row + table.num_rows
            frame = next(frames, None)
            if frame is None:
                return
            table = _arrow(frame, shown)

    fingerprint = sha256_bytes(f"{shown}\n{query}".encode())
    label = f"sql:{shown} {query}"
    release = functools.partial(_close, frames)
    return Plan("sql", label, fingerprint, columns, chunk_rows, None, None, tasks, release)


def _close(frames: Iterator[pd.DataFrame]) -> None:
    """Close a query's generator: its cursor and connection go with it."""
    close = getattr(frames, "close", None)
    if close is not None:
        close()


def _arrow(frame: pd.DataFrame, shown: str) -> pa.Table:
    import pyarrow as pa

    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError) as exc:
        raise DataError(
            f"the query on {shown} returned unusable values: {first_line(exc)}"
        ) from None
