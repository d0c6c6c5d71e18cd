"""JSON objects of the prediction log decoded a chunk at a time, straight into columns.

Monitoring folds a window column by column, so decoding a million logged
objects into a million dicts and then into a frame is the slow way round.
With pyarrow installed, Arrow's JSON reader parses a whole chunk in C++ into
columns; the chunk falls back to orjson and pandas, record by record,
whenever Arrow cannot give the same frame: a key holding values of
different kinds, nested values, a text that is not one object. Either way
the frame is the one ``pandas.DataFrame.from_records`` makes of the decoded
objects (``pandas.json_normalize`` when flattening): a column per key any
object holds, null where an object lacks it. Two differences are left, in
what no logged row holds: Arrow reads an integer from 2**63 to 2**64 as a
float, and when flattening a nested object that is null in some row gives
no column of its own (its keys' columns are null there).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pandas as pd

_PLAIN = ("null", "bool", "int64", "double", "string")
"""Arrow types whose pandas values equal those of the decoded objects."""


@dataclass(frozen=True)
class JsonObjects:
    """A chunk's JSON object texts, and the same one per line: what Arrow reads."""

    texts: Sequence[str]
    lines: bytes

    @classmethod
    def of(cls, texts: Sequence[str]) -> JsonObjects:
        return cls(texts, "\n".join(texts).encode("utf-8"))


def decode_objects(objects: JsonObjects, *, flatten: bool = False) -> pd.DataFrame:
    """One row per text (each a JSON object), one column per key.

    ``flatten`` names the keys of nested objects ``outer.inner``.

    Raises:
        orjson.JSONDecodeError: a text that is not JSON.
    """
    frame = _arrow_frame(objects, flatten) if objects.texts else None
    if frame is None:
        records = [orjson.loads(text) for text in objects.texts]
        frame = records_frame(records, flatten=flatten)
    return frame


def _arrow_frame(objects: JsonObjects, flatten: bool) -> pd.DataFrame | None:
    """The frame by Arrow's reader, or None where it would differ (or without pyarrow).

    Arrow reads ISO-8601 text as timestamps: such keys are read again as text
    (a chunk with dates is parsed twice; keys absent from a chunk must stay
    absent, so the second parse is never carried over to the next chunk).
    """
    try:
        import pyarrow as pa
    except ImportError:
        return None
    table = _read_lines(objects.lines, [])
    temporal = (
        [] if table is None else [f.name for f in table.schema if pa.types.is_temporal(f.type)]
    )
    if temporal:
        table = _read_lines(objects.lines, temporal)
    if table is None:
        return None
    while flatten and any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    if table.num_rows != len(objects.texts) or not all(str(f.type) in _PLAIN for f in table.schema):
        return None  # a text that is not one object, or nested values
    frame: pd.DataFrame = table.to_pandas()
    return frame


def _read_lines(lines: bytes, text_keys: list[str]) -> Any:
    """Arrow's table of JSON lines (``text_keys`` read as text), or None if it cannot read them."""
    import pyarrow as pa
    import pyarrow.json as pa_json

    schema = pa.schema([(key, pa.string()) for key in text_keys])
    options = pa_json.ParseOptions(explicit_schema=schema, newlines_in_values=False)
    try:
        return pa_json.read_json(io.BytesIO(lines), parse_options=options)
    except pa.ArrowInvalid:
        return None


def records_frame(records: Sequence[Mapping[str, Any]], *, flatten: bool = False) -> pd.DataFrame:
    """The frame of decoded objects (one row each, even when no object has a key).

    ``flatten`` names the keys of nested objects ``outer.inner``.
    """
    index = pd.RangeIndex(len(records))
    if flatten and records:
        frame = pd.json_normalize([dict(record) for record in records])
        frame.index = index
        return frame
    return pd.DataFrame.from_records(list(records), index=index)
