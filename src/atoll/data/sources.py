"""Where rows come from: CSV and Parquet files (a path or a glob) and SQL queries.

Everything is read through pyarrow (or SQLAlchemy for SQL), in chunks when the
caller iterates, and every failure names the file or the query's database.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from atoll.errors import DataError

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


def read_table(file: Path) -> pa.Table:
    """Read one whole file into an Arrow table, multi-threaded."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        table = pacsv.read_csv(file) if _format_of(file) == "csv" else pq.read_table(file)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"cannot read {file}: {_first_line(exc)}", file=str(file)) from None
    if table.num_rows == 0:
        raise DataError(f"{file} holds no rows", file=str(file))
    return table


def read_frame(pattern: str, base_dir: Path | None = None) -> pd.DataFrame:
    """Read every file matching ``pattern`` into one frame."""
    import pyarrow as pa

    tables = [read_table(file) for file in resolve_files(pattern, base_dir)]
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except pa.ArrowInvalid as exc:
        raise DataError(f"files matching {pattern!r} disagree on columns: {exc}") from None
    frame: pd.DataFrame = table.to_pandas()
    return frame


def iter_frames(
    pattern: str, base_dir: Path | None = None, batch_rows: int = DEFAULT_BATCH_ROWS
) -> Iterator[pd.DataFrame]:
    """Yield frames of at most ``batch_rows`` rows, file by file, in bounded memory."""
    for file in resolve_files(pattern, base_dir):
        try:
            for batch in _batches(file, batch_rows):
                yield batch.to_pandas()
        except OSError as exc:
            raise DataError(f"cannot read {file}: {_first_line(exc)}", file=str(file)) from None


def _batches(file: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if _format_of(file) == "parquet":
        yield from pq.ParquetFile(file).iter_batches(batch_size=batch_rows)
        return
    block = max(1 << 16, batch_rows * 128)
    with pacsv.open_csv(file, read_options=pacsv.ReadOptions(block_size=block)) as reader:
        yield from reader


def read_sql(url: str, query: str) -> pd.DataFrame:
    """Run ``query`` against the SQLAlchemy ``url`` and return its rows."""
    import pandas as pd
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as connection:
            frame = pd.read_sql_query(sa.text(query), connection)
    except sa.exc.SQLAlchemyError as exc:
        raise DataError(f"SQL source {shown} failed: {_first_line(exc)}", source=shown) from None
    finally:
        engine.dispose()
    if frame.empty:
        raise DataError(f"the SQL query on {shown} returned no rows", source=shown)
    return frame


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
