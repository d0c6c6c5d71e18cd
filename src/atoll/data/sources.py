"""Where rows come from: CSV and Parquet files (a path or a glob) and SQL queries.

Everything is read through pyarrow (or SQLAlchemy for SQL), in chunks when the
caller iterates, and every failure names the file or the query's database.
"""

from __future__ import annotations

import glob
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atoll._extras import require
from atoll._hashing import sha256_bytes, sha256_file
from atoll.errors import DataError, first_line

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
DEFAULT_BATCH_ROWS = 65_536


def resolve_files(pattern: str, base_dir: Path | None = None) -> list[Path]:
    """Expand a path or glob (relative to ``base_dir``) into existing data files, sorted."""
    full = Path(pattern) if Path(pattern).is_absolute() or base_dir is None else base_dir / pattern
    if any(ch in pattern for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(str(full), recursive=True))  # noqa: PTH207
        if not files:
            raise DataError(f"no files match {pattern!r}", file=str(full))
    else:
        files = [full]
    for file in files:
        _format_of(file)
        if not file.is_file():
            raise DataError(f"data file not found: {file}", file=str(file))
    return files


def _format_of(file: Path) -> str:
    kind = SUFFIXES.get(file.suffix.lower())
    if kind is None:
        known = ", ".join(sorted(SUFFIXES))
        raise DataError(
            f"{file}: unknown data format {file.suffix!r} (known: {known})", file=str(file)
        )
    return kind


def _csv_options() -> Any:
    """An empty CSV cell is null, in text columns too (as people read CSV files)."""
    import pyarrow.csv as pacsv

    return pacsv.ConvertOptions(strings_can_be_null=True)


def read_table(file: Path) -> pa.Table:
    """Read one whole file into an Arrow table, multi-threaded."""
    require("pyarrow")
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        if _format_of(file) == "csv":
            table = pacsv.read_csv(file, convert_options=_csv_options())
        else:
            table = pq.read_table(file)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"cannot read {file}: {first_line(exc)}", file=str(file)) from None
    if table.num_rows == 0:
        raise DataError(f"{file} holds no rows", file=str(file))
    return table


def read_frame(
    pattern: str, base_dir: Path | None = None, numeric: Collection[str] = ()
) -> pd.DataFrame:
    """Read every file matching ``pattern`` into one frame.

    Args:
        pattern: a path or glob, relative to ``base_dir``.
        base_dir: where relative patterns start.
        numeric: columns the schema says are numbers. A CSV column where one
            cell is not a number arrives as text; its numbers are parsed here and
            only the bad cells stay text, so validation names exactly those rows.
    """
    require("pyarrow", "pandas")
    import pyarrow as pa

    tables = [read_table(file) for file in resolve_files(pattern, base_dir)]
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"files matching {pattern!r} disagree on columns: {exc}") from None
    frame: pd.DataFrame = table.to_pandas()
    for name in numeric:
        if name in frame.columns and not _is_numeric(frame[name]):
            frame[name] = parse_numbers(frame[name])
    return frame


def _is_numeric(series: pd.Series[Any]) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(series.dtype))


def parse_numbers(series: pd.Series[Any]) -> pd.Series[Any]:
    """Text cells that are numbers become floats; the others stay as they were."""
    import numpy as np
    import pandas as pd

    parsed = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
    values = series.to_numpy(dtype=object).copy()
    ok = ~np.isnan(parsed)
    values[ok] = parsed[ok]
    return pd.Series(values, index=series.index, dtype=object)


def iter_frames(
    pattern: str, base_dir: Path | None = None, batch_rows: int = DEFAULT_BATCH_ROWS
) -> Iterator[pd.DataFrame]:
    """Yield frames of at most ``batch_rows`` rows, file by file, in bounded memory."""
    require("pyarrow", "pandas")
    import pyarrow as pa

    for file in resolve_files(pattern, base_dir):
        try:
            for batch in _batches(file, batch_rows):
                yield batch.to_pandas()
        except (OSError, pa.ArrowInvalid) as exc:
            raise DataError(f"cannot read {file}: {first_line(exc)}", file=str(file)) from None


def _batches(file: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if _format_of(file) == "parquet":
        yield from pq.ParquetFile(file).iter_batches(batch_size=batch_rows)
        return
    block = max(1 << 16, batch_rows * 128)
    read_options = pacsv.ReadOptions(block_size=block)
    with pacsv.open_csv(file, read_options=read_options, convert_options=_csv_options()) as reader:
        for batch in reader:  # a CSV block holds as many rows as fit: cut it to size
            for start in range(0, batch.num_rows, batch_rows):
                yield batch.slice(start, batch_rows)


def fingerprint_files(pattern: str, base_dir: Path | None = None) -> str:
    """sha256 over the matched files' names and bytes: cheaper than hashing parsed rows."""
    parts = [f"{file.name}:{sha256_file(file)}" for file in resolve_files(pattern, base_dir)]
    return sha256_bytes("\n".join(parts).encode())


def read_sql(url: str, query: str) -> pd.DataFrame:
    """Run ``query`` against the SQLAlchemy ``url`` and return all its rows."""
    frames = list(iter_sql(url, query, batch_rows=None))  # checks that pandas is installed
    import pandas as pd

    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def iter_sql(
    url: str, query: str, batch_rows: int | None = DEFAULT_BATCH_ROWS
) -> Iterator[pd.DataFrame]:
    """Yield the rows of ``query`` in frames of at most ``batch_rows`` (all at once if None).

    The result is streamed from the server where the driver supports it, so
    memory stays bounded by one batch.
    """
    require("pandas")
    import pandas as pd
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
    except sa.exc.ArgumentError as exc:  # unparsable URL or unknown dialect
        raise DataError(f"invalid SQL source URL: {first_line(exc)}") from None
    shown = engine.url.render_as_string(hide_password=True)
    rows = 0
    try:
        with engine.connect() as connection:
            streaming = connection.execution_options(stream_results=batch_rows is not None)
            result = pd.read_sql_query(sa.text(query), streaming, chunksize=batch_rows)
            for frame in [result] if isinstance(result, pd.DataFrame) else result:
                rows += len(frame)
                if len(frame):
                    yield frame
    except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:  # pandas wraps some
        raise DataError(f"SQL source {shown} failed: {first_line(exc)}", source=shown) from None
    finally:
        engine.dispose()
    if rows == 0:
        raise DataError(f"the SQL query on {shown} returned no rows", source=shown)
