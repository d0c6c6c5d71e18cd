"""Arrow IPC stream and CSV bodies to columns, safely.

Arrow bytes come from the client, so nothing is trusted: the stream's message
headers are read first to count rows and refuse compressed buffers (a
compressed buffer inflates to whatever its header claims) before any batch is
decoded; decoded data is fully validated before a value is read; only plain
column types are accepted, and dictionary columns may not expand past a bound
(a dictionary lets 10,000 rows point at one huge string).

CSV bodies are read in one block with the same type inference as ``atoll
predict`` reading a CSV file, so a value that does not fit a column's type
never fails the parse: the column stays text and the schema validator names it.
"""

from __future__ import annotations

import struct
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from atoll._extras import require
from atoll.errors import MissingDependencyError

from .codecs_base import Columns, Decoded, check_count, shown
from .errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

if TYPE_CHECKING:
    import pyarrow as pa

ARROW_STREAM = "application/vnd.apache.arrow.stream"
MIN_EXPANSION_BYTES = 1 << 20
EXPANSION_FACTOR = 4
"""Dictionary columns may expand to 4x the body (at least 1 MiB) of text."""


def decode_arrow_stream(body: bytes, *, max_rows: int) -> Decoded:
    """An Arrow IPC stream (schema, then record batches) as columns."""
    _need_pyarrow("Arrow IPC")
    import pyarrow as pa

    buffer = pa.py_buffer(body)
    n_rows = _scan_messages(buffer)
    check_count(n_rows, max_rows, "the Arrow stream")
    try:
        table = pa.ipc.open_stream(buffer).read_all()
        table.validate(full=True)
    except (pa.ArrowException, ValueError, OSError) as error:
        raise BadRequest(f"the body is not a valid Arrow IPC stream: {error}") from None
    return table_to_decoded(table, max_rows, _budget(len(body)), "the Arrow stream")


def decode_csv(body: bytes, *, max_rows: int, numeric: Collection[str] = ()) -> Decoded:
    """A CSV body with a header row as columns (types inferred per column, as in batch).

    A ``numeric`` column that pyarrow read as text (one cell is not a number)
    has its number-like cells parsed one by one, so the validator names only
    the rows that really are bad.
    """
    _need_pyarrow("CSV")
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if not body.strip():
        raise BadRequest("the CSV body is empty: send a header row and at least one row")
    read = pacsv.ReadOptions(block_size=max(len(body) + 1, 1 << 20), use_threads=False)
    parse = pacsv.ParseOptions(newlines_in_values=True)
    convert = pacsv.ConvertOptions(strings_can_be_null=True)
    try:
        table = pacsv.read_csv(buffer_reader(body), read, parse, convert)
    except (pa.ArrowException, ValueError, OSError) as error:
        raise BadRequest(f"the CSV body cannot be read: {error}") from None
    decoded = table_to_decoded(table, max_rows, _budget(len(body)), "the CSV body")
    for name in numeric:
        values = decoded.columns.get(name)
        if values is not None:
            decoded.columns[name] = [_number_or_text(value) for value in values]
    return decoded


def _need_pyarrow(kind: str) -> None:
    """Refuse the body (415) on an install without pyarrow, naming the extra; JSON still works."""
    try:
        require("pyarrow")
    except MissingDependencyError as error:
        raise UnsupportedMediaType(
            f"this server cannot read {kind} bodies ({error}); send application/json"
        ) from None


def _number_or_text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return float(value)
    except ValueError:
        return value


def buffer_reader(body: bytes) -> Any:
    import pyarrow as pa

    return pa.BufferReader(pa.py_buffer(body))


def table_to_decoded(table: pa.Table, max_rows: int, budget: int, where: str) -> Decoded:
    """Every column as a list of plain Python values (None for null)."""
    try:
        names = table.column_names
    except UnicodeDecodeError:
        raise BadRequest("column names must be UTF-8 text") from None
    if len(set(names)) != len(names):
        raise BadRequest(f"column names repeat: {', '.join(shown(n) for n in names[:8])}")
    check_count(table.num_rows, max_rows, where)
    columns: Columns = {}
    for name, column in zip(names, table.columns, strict=True):
        values: list[Any] = []
        for chunk in column.chunks:
            values.extend(_values(name, chunk, budget))
        columns[name] = values
    return Decoded(columns, table.num_rows)


def _values(name: str, array: pa.Array, budget: int) -> list[Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    try:
        if pa.types.is_dictionary(kind):
            return _expand(name, array, budget)
        if pa.types.is_timestamp(kind) and kind.unit == "ns":  # to_pylist would need pandas
            return _nanosecond_stamps(array)
        if _plain(kind):
            return list(array.to_pylist())
        if pa.types.is_float16(kind) or pa.types.is_decimal(kind):
            return list(pc.cast(array, pa.float64()).to_pylist())
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            return list(pc.cast(array, pa.large_string()).to_pylist())
    except (pa.ArrowException, ValueError, OverflowError) as error:
        raise BadRequest(f"column {shown(name)} cannot be read: {error}", column=name) from None
    if pa.types.is_nested(kind):
        rows = array.is_valid().to_pylist()
        row = rows.index(True) if True in rows else 0
        raise BadRequest(
            f"column {shown(name)}, row {row}: a list or struct is not a single value "
            "(send a number, string, boolean or null)",
            column=name,
            row=row,
        )
    raise BadRequest(
        f"column {shown(name)} has Arrow type {kind}; send numbers, booleans, "
        "strings, dates or timestamps",
        column=name,
    )


def _plain(kind: pa.DataType) -> bool:
    import pyarrow as pa

    t = pa.types
    return bool(
        t.is_null(kind)
        or t.is_boolean(kind)
        or t.is_integer(kind)
        or t.is_float32(kind)
        or t.is_float64(kind)
        or t.is_string(kind)
        or t.is_large_string(kind)
        or t.is_date(kind)
        or t.is_timestamp(kind)
    )


def _nanosecond_stamps(array: pa.TimestampArray) -> list[Any]:
    """As numpy datetimes (UTC where zoned), None for null: datetime stops at microseconds."""
    import numpy as np

    stamps = array.to_numpy(zero_copy_only=False)
    values: list[Any] = list(stamps)
    for row in np.flatnonzero(np.isnat(stamps)).tolist():
        values[row] = None
    return values


def _expand(name: str, array: pa.DictionaryArray, budget: int) -> list[Any]:
    """Dictionary values decoded once and shared by reference, within a text budget."""
    import pyarrow as pa
    import pyarrow.compute as pc

    dictionary = array.dictionary
    if pa.types.is_string(dictionary.type) or pa.types.is_large_string(dictionary.type):
        lengths = pc.take(pc.binary_length(dictionary), array.indices)
        expanded = pc.sum(lengths).as_py() or 0
        if expanded > budget:
            raise PayloadTooLarge(
                f"column {shown(name)}: dictionary values expand to {expanded} bytes "
                f"(more than {budget}); send the values without dictionary encoding",
                column=name,
            )
    values = _values(name, dictionary, budget)
    return [None if i is None else values[i] for i in array.indices.to_pylist()]


def _budget(body_bytes: int) -> int:
    return max(EXPANSION_FACTOR * body_bytes, MIN_EXPANSION_BYTES)


# --- message headers (Arrow's Message.fbs), read before any batch is decoded ---


def _scan_messages(buffer: pa.Buffer) -> int:
    """Rows the stream's record batches declare; refuses compressed buffers."""
    import pyarrow as pa

    n_rows = 0
    try:
        reader = pa.ipc.MessageReader.open_stream(buffer)
        while True:
            try:
                message = reader.read_next_message()
            except StopIteration:
                break
            if message.type == "schema":
                continue
            if message.type not in ("record batch", "dictionary"):
                raise BadRequest(f"Arrow message type {message.type!r} is not accepted")
            rows, compressed = _batch_header(message.metadata.to_pybytes(), message.type)
            if compressed:
                raise UnsupportedMediaType(
                    "compressed Arrow IPC buffers are not accepted; write the stream "
                    "without compression"
                )
            if message.type == "record batch":
                n_rows += rows
    except (pa.ArrowException, OSError, struct.error) as error:
        raise BadRequest(f"the body is not a valid Arrow IPC stream: {error}") from None
    return n_rows


def _batch_header(metadata: bytes, kind: str) -> tuple[int, bool]:
    """``(length, compressed)`` of a RecordBatch header (inside a DictionaryBatch if ``kind``)."""
    root = struct.unpack_from("<I", metadata, 0)[0]
    header = _child(metadata, root, 2)  # Message.header
    if header is not None and kind == "dictionary":
        header = _child(metadata, header, 1)  # DictionaryBatch.data
    if header is None:
        raise BadRequest("an Arrow batch message has no header")
    length_at = _field(metadata, header, 0)  # RecordBatch.length
    length = struct.unpack_from("<q", metadata, length_at)[0] if length_at else 0
    return length, _field(metadata, header, 3) is not None  # RecordBatch.compression


def _field(buf: bytes, table: int, index: int) -> int | None:
    """Where field ``index`` of the flatbuffer table at ``table`` lies, or None if absent."""
    vtable = table - struct.unpack_from("<i", buf, table)[0]
    slot = 4 + 2 * index
    if slot + 2 > struct.unpack_from("<H", buf, vtable)[0]:
        return None
    offset = struct.unpack_from("<H", buf, vtable + slot)[0]
    return table + offset if offset else None


def _child(buf: bytes, table: int, index: int) -> int | None:
    """The table an offset field points to."""
    at = _field(buf, table, index)
    return None if at is None else at + struct.unpack_from("<I", buf, at)[0]
