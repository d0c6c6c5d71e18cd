"""Request bodies to columns and predictions to response bodies, for every protocol.

Routes import from here only. Decoders return :class:`Decoded` (a column dict
of plain Python values and its row count) and check shape and structure; the
schema validator checks the values. The native ``/v1`` body is decoded here;
the other protocols live in their own modules.
"""

from __future__ import annotations

from typing import Any

from .codecs_arrow import ARROW_STREAM, decode_arrow_stream
from .codecs_base import Columns, Decoded, check_count, from_records, from_rows
from .codecs_encode import encode_mlflow, encode_native, encode_v2, v2_model_metadata
from .codecs_mlflow import decode_mlflow
from .codecs_v2 import decode_v2
from .errors import BadRequest, UnsupportedMediaType
from .jsonio import JSON_TYPE, check_params, decode_json, media_type, parse_json

__all__ = [
    "ARROW_STREAM",
    "Columns",
    "Decoded",
    "decode_mlflow",
    "decode_native",
    "decode_v2",
    "encode_mlflow",
    "encode_native",
    "encode_v2",
    "parse_json",
    "v2_model_metadata",
]

_NATIVE_SHAPE = (
    'the body must be {"instances": [{...}, ...]} or {"columns": [...], "data": [[...], ...]}'
)


def decode_native(
    body: bytes, content_type: str | None, *, max_rows: int, max_depth: int
) -> Decoded:
    """A ``/v1`` predict body: JSON records or columns, or an Arrow IPC stream.

    Args:
        body: the raw body.
        content_type: ``application/json`` (or none), or
            ``application/vnd.apache.arrow.stream``; ``charset=utf-8`` allowed.
        max_rows: rows per request (413 past it).
        max_depth: nesting levels of a JSON body (400 past it).
    """
    if content_type and content_type != JSON_TYPE:
        kind, params = media_type(content_type)
        check_params(kind, params)
        if kind == ARROW_STREAM:
            return decode_arrow_stream(body, max_rows=max_rows)
        if kind not in ("", JSON_TYPE):
            raise UnsupportedMediaType(
                f"Content-Type {kind[:60]!r} is not supported; send {JSON_TYPE} or {ARROW_STREAM}"
            )
    return decode_json(body, max_depth, lambda data: _decode_json(data, max_rows))


def _decode_json(data: Any, max_rows: int) -> Decoded:
    if type(data) is not dict:
        raise BadRequest(_NATIVE_SHAPE)
    if "instances" in data:
        _only(data, ("instances",))
        rows = data["instances"]
        if type(rows) is not list:
            raise BadRequest("instances must be a list of objects, one per row")
        check_count(len(rows), max_rows, "instances")
        return Decoded(from_records(rows, "instances"), len(rows))
    if "columns" in data and "data" in data:
        _only(data, ("columns", "data"))
        names, rows = data["columns"], data["data"]
        if type(names) is not list or any(type(name) is not str for name in names):
            raise BadRequest("columns must be a list of column names")
        if type(rows) is not list:
            raise BadRequest("data must be a list of rows, each a list of values")
        check_count(len(rows), max_rows, "data")
        return Decoded(from_rows(rows, names, "data"), len(rows))
    raise BadRequest(_NATIVE_SHAPE)


def _only(data: dict[str, Any], keys: tuple[str, ...]) -> None:
    extra = [key for key in data if key not in keys]
    if extra:
        raise BadRequest(f"unknown key {extra[0][:64]!r}: " + _NATIVE_SHAPE)
