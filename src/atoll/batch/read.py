"""Reading batch input in chunks of an exact size: CSV headers and blocks, Parquet row groups.

Every chunk holds exactly ``chunk_rows`` rows (the last of a file fewer),
whatever block or batch sizes the readers use, so the chunks of an input are
the same on every run: that is what makes a killed job resumable. Read errors
name the file and how far into it the reading got.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from atoll.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def rechunk(
    batches: Iterable[pa.RecordBatch], chunk_rows: int, *, copy: bool = False
) -> Iterator[pa.Table]:
    """Regroup batches of any sizes into tables of exactly ``chunk_rows`` (the last fewer).

    With ``copy``, each table holds only its own rows (see :func:`compact`):
    for chunks that are sent to another process.
    """
    import pyarrow as pa

    own = compact if copy else _same
    buffered: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        buffered.append(batch)
        count += batch.num_rows
        while count >= chunk_rows:
            table = pa.Table.from_batches(buffered)
            yield own(table.slice(0, chunk_rows))
            rest = table.slice(chunk_rows)
            buffered, count = rest.to_batches(), rest.num_rows
    if count:
        yield own(pa.Table.from_batches(buffered))


def _same(table: pa.Table) -> pa.Table:
    return table


def compact(table: pa.Table) -> pa.Table:
    """A copy holding only its own rows: a slice would carry (and ship) its parent's buffers."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return pa.ipc.open_stream(sink.getvalue()).read_all()


def csv_header(file: Path) -> list[str]:
    """The column names of a CSV file (its first line)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        with pacsv.open_csv(file) as reader:
            return list(reader.schema.names)
    except (OSError, pa.ArrowException) as exc:
        if "Empty CSV file" in str(exc):
            raise DataError(f"{file} is empty: it holds no rows", file=str(file)) from None
        raise DataError(f"cannot read {file}: {first_line(exc)}", file=str(file)) from None


CSV_BYTES_PER_ROW = 128
"""A guess, to size the reader's blocks near one chunk: their size changes no result."""


def csv_chunks(file: Path, columns: Sequence[str], chunk_rows: int) -> Iterator[pa.Table]:
    """The chosen columns of a CSV file, as text, in chunks of ``chunk_rows`` rows.

    Every column is read as text and typed per chunk by the chunk function:
    a reader that guessed types from its first block would fail on a later
    block where a number column holds one bad cell, instead of quarantining
    that row. Empty cells are null.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    block = min(max(1 << 20, chunk_rows * CSV_BYTES_PER_ROW), 1 << 28)
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in columns},
        include_columns=list(columns),
        strings_can_be_null=True,
    )
    rows = 0
    try:
        with pacsv.open_csv(
            file, read_options=pacsv.ReadOptions(block_size=block), convert_options=convert
        ) as reader:
            for chunk in rechunk(reader, chunk_rows, copy=True):
                rows += chunk.num_rows
                yield chunk
    except (OSError, pa.ArrowException) as exc:
        raise DataError(
            f"cannot read {file} after its first {rows:,} rows: {first_line(exc)}",
            file=str(file),
            row=rows,
        ) from None


def parquet_row_groups(file: Path) -> list[int]:
    """The row count of each row group, from the file's footer (no data is read)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_metadata(file)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read {file}: {first_line(exc)}", file=str(file)) from None
    return [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]


def parquet_schema(file: Path) -> pa.Schema:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(file)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read {file}: {first_line(exc)}", file=str(file)) from None


def parquet_chunk(
    file: Path,
    row_groups: Sequence[int],
    skip: int,
    n_rows: int,
    columns: Sequence[str],
    batch_rows: int,
    label: str | None = None,
) -> pa.Table:
    """Rows ``skip`` .. ``skip + n_rows - 1`` of some row groups of a Parquet file, checksummed.

    Read in batches of ``batch_rows`` (the chunk size) that stop at the last one needed: a chunk
    from the middle of a large row group decodes the group's earlier rows
    (one batch at a time, then dropped) but never the later ones, so memory
    follows the chunk, not the row group. Single-threaded: it runs inside a
    worker that owns one core. Errors name the file as ``label`` (the user's
    spelling) when given.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = label or str(file)
    where = f"row group{'s' if len(row_groups) > 1 else ''} {', '.join(map(str, row_groups))}"
    try:
        parquet = pq.ParquetFile(file, page_checksum_verification=True)
        batches = parquet.iter_batches(
            batch_size=batch_rows, row_groups=list(row_groups), columns=list(columns),
            use_threads=False,
        )  # fmt: skip
        kept = _rows(batches, skip, n_rows)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"cannot read {name} ({where}): {first_line(exc)}", file=name) from None
    got = sum(batch.num_rows for batch in kept)
    if got != n_rows:
        raise DataError(
            f"cannot read {name} ({where}): {got:,} rows from row {skip:,}, "
            f"not the {n_rows:,} its footer promises",
            file=name,
        )
    return pa.Table.from_batches(kept)


def _rows(batches: Iterable[pa.RecordBatch], skip: int, n_rows: int) -> list[pa.RecordBatch]:
    """Rows ``skip`` .. ``skip + n_rows - 1`` of a stream of batches, reading no further."""
    kept: list[pa.RecordBatch] = []
    seen = count = 0
    for batch in batches:
        start = max(0, skip - seen)
        seen += batch.num_rows
        if start < batch.num_rows:
            part = batch.slice(start, n_rows - count)
            kept.append(part)
            count += part.num_rows
        if count >= n_rows:
            break
    return kept
