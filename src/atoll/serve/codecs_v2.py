"""The Open Inference Protocol (KServe V2) body, as real V2 clients send it.

research/protocols.md lists what tritonclient, the kserve SDK and the OIP
client send: no Content-Type or any, the binary tensor extension, gzip over
the whole body, and unknown top-level keys such as ``model_name``. A tabular
model reads either one tensor per column (MLServer's ``pd`` style, shape
``[n]`` or ``[n, 1]``, named like the columns) or a single 2-D tensor
``[n, len(input_names)]`` whose columns are the model's inputs in order.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .codecs_base import (
    Columns,
    Decoded,
    check_cells,
    check_count,
    names_shown,
    shown,
)
from .errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from .jsonio import check_other_keys, decode_json

NUMPY_TYPES: dict[str, str] = {
    "BOOL": "u1",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
"""Little-endian element types of the binary tensor extension (BYTES is length-prefixed)."""

DATATYPES = frozenset({*NUMPY_TYPES, "BYTES"})
HEADER_LENGTH = "inference-header-content-length"
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
MAX_MEMBERS = 64
"""Concatenated gzip members accepted: thousands of empty ones would only burn CPU."""
_INPUTS = 'the body must be a JSON object with "inputs": a non-empty list of tensors'
_TENSOR_KEYS = ("name", "shape", "datatype", "data")


def decode_v2(
    body: bytes,
    headers: Mapping[str, str],
    *,
    input_names: Sequence[str],
    max_rows: int,
    max_inflated_bytes: int,
    max_depth: int,
) -> Decoded:
    """An inference request as columns; ``id`` and ``parameters`` are kept for the answer.

    Args:
        body: the raw body, compressed if ``Content-Encoding`` says so.
        headers: request headers with lower-case names (Starlette's match any case).
        input_names: the model's input columns in schema order (for a 2-D tensor).
        max_rows: rows per request (413 past it).
        max_inflated_bytes: the most a compressed body may inflate to (413 past it).
        max_depth: nesting levels of the JSON part (400 past it).
    """
    body = inflate(body, headers.get("content-encoding"), max_inflated_bytes)
    head, binary = _split(body, headers.get(HEADER_LENGTH))

    def decode(request: Any) -> Decoded:
        if type(request) is not dict:
            raise BadRequest(_INPUTS)
        inputs = request.get("inputs")
        if type(inputs) is not list or not inputs:
            raise BadRequest(_INPUTS)
        if len(request) > 1:  # id, parameters, outputs and keys V2 lets servers ignore
            check_other_keys(request, ("inputs",), 2, max_depth)
        for tensor in inputs:  # name, shape and datatype are checked; the rest is free-form
            if type(tensor) is dict and (len(tensor) != len(_TENSOR_KEYS) or "data" not in tensor):
                check_other_keys(tensor, _TENSOR_KEYS, 4, max_depth)
        reader = _Binary(binary)
        if len(inputs) == 1 and _is_matrix(inputs[0], input_names):
            columns, n_rows = _matrix(inputs[0], reader, input_names, max_rows)
        else:
            columns, n_rows = _per_column(inputs, reader, max_rows)
        reader.finish()
        return Decoded(columns, n_rows, _request_id(request), _parameters(request))

    return decode_json(head, max_depth, decode)


def inflate(body: bytes, encoding: str | None, cap: int) -> bytes:
    """The body decompressed (every gzip member), refusing to inflate past ``cap`` bytes."""
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        return body
    wbits = _WBITS.get(name)
    if wbits is None:
        raise UnsupportedMediaType(f"Content-Encoding {name[:40]!r} is not supported; use gzip")
    parts: list[bytes] = []
    left, data = cap, body
    try:
        while data:
            if len(parts) == MAX_MEMBERS:
                raise BadRequest(f"the body has more than {MAX_MEMBERS} {name} members")
            inflater = zlib.decompressobj(wbits)
            part = inflater.decompress(data, left + 1)
            if len(part) > left:
                raise PayloadTooLarge(f"the body inflates past {cap} bytes", max_bytes=cap)
            if not inflater.eof:
                raise BadRequest(f"the {name} body is truncated")
            parts.append(part)
            left -= len(part)
            data = inflater.unused_data
    except zlib.error as error:
        raise BadRequest(f"the body is not valid {name}: {error}") from None
    return b"".join(parts)


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON part and the binary tensor data that follows it."""
    if header_length is None:
        return body, b""
    text = header_length.strip()
    valid = len(text) <= 12 and text.isascii() and text.isdigit()
    if not valid or not 0 < int(text) <= len(body):
        raise BadRequest(
            f"Inference-Header-Content-Length must be a byte count within the body "
            f"({len(body)} bytes), not {text[:20]!r}"
        )
    size = int(text)
    return body[:size], body[size:]


def _is_matrix(tensor: Any, input_names: Sequence[str]) -> bool:
    """A lone ``[n, k]`` tensor is a matrix unless it is ``[n, 1]`` named like a column."""
    if type(tensor) is not dict:
        return False
    shape = tensor.get("shape")
    if type(shape) is not list or len(shape) != 2:
        return False
    return shape[1] != 1 or tensor.get("name") not in input_names


def _matrix(
    tensor: dict[str, Any], reader: _Binary, input_names: Sequence[str], max_rows: int
) -> tuple[Columns, int]:
    """Columns of a 2-D tensor mapped to the model's inputs in order."""
    _, shape, datatype = _head(0, tensor)
    n_rows, width = shape
    check_count(n_rows, max_rows, "inputs[0]")
    if width != len(input_names):
        raise BadRequest(
            f"inputs[0] has shape {shape}: a 2-D input needs one column per model input, "
            f"{len(input_names)} in this order: {names_shown(list(input_names))}"
        )
    values = _values(0, tensor, shape, datatype, reader)
    columns = {name: values[j::width] for j, name in enumerate(input_names)}
    for name, column in columns.items():
        check_cells(name, column)
    return columns, n_rows


def _per_column(inputs: list[Any], reader: _Binary, max_rows: int) -> tuple[Columns, int]:
    """One ``[n]`` or ``[n, 1]`` tensor per column, kept under the names sent."""
    columns: Columns = {}
    n_rows = -1
    for i, tensor in enumerate(inputs):
        name, shape, datatype = _head(i, tensor)
        if len(shape) == 2 and shape[1] != 1:
            raise BadRequest(
                f"inputs[{i}] ({shown(name)}) has shape {shape}: send one [n] tensor per "
                "column, or a single [n, k] tensor of every input in order"
            )
        if n_rows < 0:
            n_rows = shape[0]
            check_count(n_rows, max_rows, f"inputs[{i}]")
        elif shape[0] != n_rows:
            raise BadRequest(
                f"inputs[{i}] ({shown(name)}) has {shape[0]} rows; inputs[0] has {n_rows}"
            )
        if name in columns:
            raise BadRequest(f"inputs[{i}]: the name {shown(name)} is used twice")
        values = _values(i, tensor, shape, datatype, reader)
        check_cells(name, values)
        columns[name] = values
    return columns, n_rows


def _head(i: int, tensor: Any) -> tuple[str, list[int], str]:
    """``(name, shape, datatype)`` of one input tensor, checked."""
    if type(tensor) is not dict:
        raise BadRequest(f"inputs[{i}] is not an object")
    name, shape, datatype = tensor.get("name"), tensor.get("shape"), tensor.get("datatype")
    if type(name) is not str:
        raise BadRequest(f"inputs[{i}].name must be a string")
    if type(datatype) is not str or datatype not in DATATYPES:
        raise BadRequest(
            f"inputs[{i}].datatype must be one of {', '.join(sorted(DATATYPES))}",
            column=name,
        )
    if type(shape) is not list or not _dims_ok(shape):
        raise BadRequest(
            f"inputs[{i}].shape must be [n] or [n, k] with non-negative integers", column=name
        )
    return name, shape, datatype


def _dims_ok(shape: list[Any]) -> bool:
    """``[n]`` or ``[n, k]`` of non-negative ints (bools are ints to Python, not here)."""
    if len(shape) == 1:
        n = shape[0]
        return type(n) is int and n >= 0
    if len(shape) == 2:
        n, k = shape
        return type(n) is int and type(k) is int and n >= 0 and k >= 0
    return False


def _values(
    i: int, tensor: dict[str, Any], shape: list[int], datatype: str, reader: _Binary
) -> list[Any]:
    """The tensor's elements, flat and row-major, from JSON ``data`` or the binary part."""
    count = shape[0] if len(shape) == 1 else shape[0] * shape[1]
    parameters = tensor.get("parameters")
    size = parameters.get("binary_data_size") if type(parameters) is dict else None
    if size is not None:
        if "data" in tensor:
            raise BadRequest(f"inputs[{i}] has both data and binary_data_size")
        return reader.take(i, size, datatype, count)
    data = tensor.get("data")
    if type(data) is not list:
        raise BadRequest(f"inputs[{i}].data must be a list (or use binary_data_size)")
    values = data if len(shape) == 1 else _flatten(i, data)
    if len(values) != count:
        raise BadRequest(f"inputs[{i}].shape {shape} does not match {len(values)} values")
    return values


def _flatten(i: int, data: list[Any]) -> list[Any]:
    """Nested 2-D data (``[[1, 2], [3, 4]]``) made flat; flat data is kept as sent."""
    if not data or type(data[0]) is not list:
        return data
    flat: list[Any] = []
    for row in data:
        if type(row) is not list:
            raise BadRequest(f"inputs[{i}].data mixes nested and flat values")
        flat.extend(row)
    return flat


class _Binary:
    """The binary tensor data after the JSON header, handed out in input order."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, i: int, size: Any, datatype: str, count: int) -> list[Any]:
        if type(size) is not int or size < 0:
            raise BadRequest(f"inputs[{i}].parameters.binary_data_size must be a byte count")
        end = self.pos + size
        if end > len(self.data):
            raise BadRequest(
                f"inputs[{i}]: binary_data_size {size} runs past the "
                f"{len(self.data)} bytes of binary data"
            )
        chunk, self.pos = self.data[self.pos : end], end
        if datatype == "BYTES":
            return _strings(i, chunk, count)
        dtype = np.dtype(NUMPY_TYPES[datatype])
        if size != count * dtype.itemsize:
            raise BadRequest(f"inputs[{i}]: {size} bytes do not hold {count} {datatype} values")
        array = np.frombuffer(chunk, dtype)
        return list((array != 0).tolist() if datatype == "BOOL" else array.tolist())

    def finish(self) -> None:
        if self.pos != len(self.data):
            left = len(self.data) - self.pos
            raise BadRequest(f"{left} bytes of binary data belong to no input")


def _strings(i: int, chunk: bytes, count: int) -> list[Any]:
    """BYTES elements: each a 4-byte little-endian length, then that many UTF-8 bytes."""
    values: list[Any] = []
    pos = 0
    while pos < len(chunk):
        length = int.from_bytes(chunk[pos : pos + 4], "little")
        end = pos + 4 + length
        if pos + 4 > len(chunk) or end > len(chunk):
            raise BadRequest(f"inputs[{i}]: a BYTES element runs past its binary data")
        try:
            values.append(chunk[pos + 4 : end].decode("utf-8"))
        except UnicodeDecodeError:
            raise BadRequest(f"inputs[{i}] element {len(values)} is not UTF-8 text") from None
        pos = end
    if len(values) != count:
        raise BadRequest(f"inputs[{i}]: {len(values)} BYTES elements for {count} in its shape")
    return values


def _request_id(request: dict[str, Any]) -> str | None:
    value = request.get("id")
    if value is None or type(value) is str:
        return value
    raise BadRequest("id must be a string")


def _parameters(request: dict[str, Any]) -> dict[str, Any]:
    value = request.get("parameters")
    if value is None:
        return {}
    if type(value) is not dict:
        raise BadRequest("parameters must be an object")
    return value
