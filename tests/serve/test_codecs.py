"""The request and response codecs: every wire format, every refusal, and property tests."""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers

from atoll.model.predictor import Prediction
from atoll.schema import Column, Schema
from atoll.serve.codecs import (
    ARROW_STREAM,
    Decoded,
    decode_mlflow,
    decode_native,
    decode_v2,
    encode_mlflow,
    encode_native,
    encode_v2,
    parse_json,
    v2_model_metadata,
)
from atoll.serve.errors import BadRequest, PayloadTooLarge, ServeError, UnsupportedMediaType
from atoll.serve.jsonio import JsonTooDeep, check_depth, is_deeper
from atoll.types import Task

MAX_ROWS = 100
CAP = 1 << 16
NAMES = ["age", "income", "city"]
DEPTH = 32
JSON = "application/json"


def native(body: Any, content_type: str | None = JSON, max_rows: int = MAX_ROWS) -> Decoded:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return decode_native(raw, content_type, max_rows=max_rows, max_depth=DEPTH)


def mlflow(
    body: Any, content_type: str | None = JSON, names: list[str] | None = None, max_rows: int = 100
) -> Decoded:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return decode_mlflow(
        raw, content_type, input_names=names or NAMES, max_rows=max_rows, max_depth=DEPTH
    )


def v2(
    body: Any,
    headers: dict[str, str] | None = None,
    names: list[str] | None = None,
    max_rows: int = MAX_ROWS,
) -> Decoded:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return decode_v2(
        raw,
        Headers(headers or {}),
        input_names=NAMES if names is None else names,
        max_rows=max_rows,
        max_inflated_bytes=CAP,
        max_depth=DEPTH,
    )


def tensor(name: str, data: Any, shape: list[int], datatype: str = "FP64") -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def arrow_stream(table: pa.Table, **options: Any) -> bytes:
    sink = pa.BufferOutputStream()
    write = pa.ipc.IpcWriteOptions(**options)
    with pa.ipc.new_stream(sink, table.schema, options=write) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def binary_request(head: dict[str, Any], blobs: list[bytes]) -> tuple[bytes, dict[str, str]]:
    header = orjson.dumps(head)
    return header + b"".join(blobs), {"Inference-Header-Content-Length": str(len(header))}


def bytes_elements(*values: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(v)) + v for v in values)


# --- parse_json ---


@pytest.mark.parametrize("body", [b"", b"{", b"NaN", b"[Infinity]", b"[-Infinity]", b"1e400"])
def test_parse_json_refuses_malformed_and_non_finite_numbers(body: bytes) -> None:
    with pytest.raises(BadRequest, match="not valid JSON"):
        parse_json(body)


def test_parse_json_says_where_the_parse_stopped() -> None:
    with pytest.raises(BadRequest, match="line 1 column"):
        parse_json(b'{"a": [1, 2')


def test_parse_json_refuses_deep_nesting_without_recursion_error() -> None:
    with pytest.raises(JsonTooDeep, match=r"serve\.limits\.max_json_depth"):
        parse_json(b"[" * 100_000 + b"]" * 100_000)


def nested(depth: int) -> Any:
    """Lists nested ``depth`` levels around a 1 (depth 0: the scalar)."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "depth"),
    [(1, 0), ("text", 0), ([], 1), ({}, 1), ([1, {"a": 2}], 2), ({"a": [[], [[3]]]}, 4)],
)
def test_is_deeper_measures_lists_and_objects(value: Any, depth: int) -> None:
    assert not is_deeper(value, depth)
    assert is_deeper(value, depth - 1) == (depth > 0)


def test_a_free_form_part_counts_from_where_it_sits() -> None:
    check_depth(nested(30), 3, 32)  # levels 3 to 32
    with pytest.raises(JsonTooDeep, match="deeper than 32 levels"):
        check_depth(nested(31), 3, 32)


FreeForm = Callable[[Any], tuple[Callable[[], Decoded], int]]
# ``fill`` sits ``above`` levels down: the body is ``above`` levels plus the depth of ``fill``
FREE_FORM: dict[str, FreeForm] = {
    "v2 parameters": lambda fill: v2_bytes(
        {"inputs": [tensor("age", [1], [1])], "parameters": {"a": fill}}, 2
    ),
    "v2 outputs": lambda fill: v2_bytes({"inputs": [tensor("age", [1], [1])], "outputs": fill}, 1),
    "v2 tensor parameters": lambda fill: v2_bytes(
        {"inputs": [tensor("age", [1], [1]) | {"parameters": {"a": fill}}]}, 4
    ),
    "mlflow params": lambda fill: mlflow_bytes({"inputs": [[1, 2, 3]], "params": {"a": fill}}, 2),
    "mlflow ignored key": lambda fill: mlflow_bytes({"inputs": [[1, 2, 3]], "extra": fill}, 1),
    "mlflow split index": lambda fill: mlflow_bytes(
        {"dataframe_split": {"data": [[1, 2, 3]], "index": fill}}, 2
    ),
}


def v2_bytes(body: dict[str, Any], above: int) -> tuple[Callable[[], Decoded], int]:
    return (lambda: v2(body, names=["age"])), above


def mlflow_bytes(body: dict[str, Any], above: int) -> tuple[Callable[[], Decoded], int]:
    return (lambda: mlflow(body)), above


@pytest.mark.parametrize("case", FREE_FORM, ids=list(FREE_FORM))
def test_free_form_parts_are_held_to_the_depth_limit(case: str) -> None:
    """The parts a protocol leaves free are accepted up to the limit and refused past it."""
    build = FREE_FORM[case]
    _, above = build(1)
    at_limit, _ = build(nested(DEPTH - above))
    at_limit()
    too_deep, _ = build(nested(DEPTH - above + 1))
    with pytest.raises(JsonTooDeep, match="deeper than 32 levels"):
        too_deep()


@pytest.mark.parametrize(
    "decode",
    [
        lambda cell: native({"instances": [{"age": cell, "income": 1.0, "city": "x"}]}),
        lambda cell: native({"columns": ["age"], "data": [[cell]]}),
        lambda cell: v2({"inputs": [tensor("age", [cell], [1])]}, names=["age"]),
        lambda cell: mlflow({"dataframe_records": [{"age": cell}]}),
    ],
    ids=["native records", "native columns", "v2", "mlflow"],
)
def test_a_nested_cell_is_refused_naming_the_depth_only_past_the_limit(
    decode: Callable[[Any], Decoded],
) -> None:
    with pytest.raises(BadRequest) as shallow:
        decode(nested(3))
    assert shallow.value.code == "bad_request"
    with pytest.raises(JsonTooDeep):
        decode(nested(DEPTH))


# --- native /v1 ---


def test_native_records_one_row() -> None:
    decoded = native({"instances": [{"age": 41, "income": 52000.5, "city": "Oslo"}]})
    assert decoded.columns == {"age": [41], "income": [52000.5], "city": ["Oslo"]}
    assert decoded.n_rows == 1
    assert decoded.request_id is None
    assert decoded.parameters == {}


def test_native_records_take_the_union_of_keys_with_null_where_absent() -> None:
    rows = [{"a": 1, "b": "x"}, {"b": "y", "c": True}, {}, {"a": None, "c": False, "b": "z"}]
    decoded = native({"instances": rows})
    assert decoded.n_rows == 4
    assert decoded.columns == {
        "a": [1, None, None, None],
        "b": ["x", "y", None, "z"],
        "c": [None, True, None, False],
    }


def test_native_records_with_the_same_keys_in_any_order() -> None:
    rows = [{"a": 1, "b": 2}, {"b": 4, "a": 3}, {"a": 5, "b": 6}]
    assert native({"instances": rows}).columns == {"a": [1, 3, 5], "b": [2, 4, 6]}


def test_native_same_sized_records_with_other_keys() -> None:
    rows = [{"a": 1, "b": 2}, {"a": 3, "c": 4}]
    assert native({"instances": rows}).columns == {
        "a": [1, 3],
        "b": [2, None],
        "c": [None, 4],
    }


def test_native_keeps_column_names_as_given() -> None:
    rows = [{"Monthly Income (€)": 1.5, "": 2, "a.b": 3}]
    decoded = native({"instances": rows})
    assert list(decoded.columns) == ["Monthly Income (€)", "", "a.b"]


def test_native_columns_form() -> None:
    decoded = native({"columns": ["Age", "city"], "data": [[1, "a"], [2, None]]})
    assert decoded.columns == {"Age": [1, 2], "city": ["a", None]}
    assert decoded.n_rows == 2


@pytest.mark.parametrize(
    "content_type",
    [None, "", JSON, "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"],
)
def test_native_json_content_types(content_type: str | None) -> None:
    assert native({"instances": [{"a": 1}]}, content_type).n_rows == 1


@pytest.mark.parametrize(
    ("content_type", "match"),
    [
        ("text/plain", "text/plain"),
        ("application/x-www-form-urlencoded", "not supported"),
        ("application/x-python-pickle", "not supported"),
        ("multipart/form-data; boundary=x", "boundary"),
        ("application/json; charset=latin-1", "latin-1"),
        ("application/json; format=pandas-split", "format"),
    ],
)
def test_native_refuses_other_media_types(content_type: str, match: str) -> None:
    with pytest.raises(UnsupportedMediaType, match=match):
        native({"instances": [{"a": 1}]}, content_type)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ([{"a": 1}], "instances"),
        ("text", "instances"),
        ({}, "instances"),
        ({"instances": {"a": 1}}, "instances must be a list"),
        ({"instances": [{"a": 1}, {"a": 2}, {"a": 3}, [1]]}, r"instances\[3\] is not an object"),
        ({"instances": [{"a": 1}], "extra": 1}, "unknown key 'extra'"),
        ({"instances": []}, "instances is empty"),
        ({"columns": ["a"]}, "instances"),
        ({"columns": "a", "data": [[1]]}, "columns must be a list"),
        ({"columns": ["a", 1], "data": [[1, 2]]}, "columns must be a list"),
        ({"columns": ["a"], "data": {"a": 1}}, "data must be a list"),
        ({"columns": ["a", "b"], "data": [[1, 2], [3]]}, r"data\[1\] has 1 values; expected 2"),
        ({"columns": ["a", "b"], "data": [[1, 2], "x"]}, r"data\[1\] is not a list"),
        ({"columns": ["a", "a"], "data": [[1, 2], [3, 4]]}, "repeat"),
        ({"columns": ["a"], "data": []}, "data is empty"),
    ],
)
def test_native_refuses_malformed_shapes(body: Any, match: str) -> None:
    with pytest.raises(BadRequest, match=match):
        native(body)


@pytest.mark.parametrize(
    "body",
    [
        {"instances": [{"a": 1}, {"a": [1, 2]}]},
        {"instances": [{"a": 1, "b": 2}, {"b": 3, "a": {"x": 1}}]},
        {"instances": [{"b": 1}, {"a": [1]}]},
        {"columns": ["b", "a"], "data": [[1, 2], [3, [4]]]},
    ],
)
def test_native_refuses_nested_cells_naming_column_and_row(body: Any) -> None:
    with pytest.raises(BadRequest, match=r"column 'a', row 1: an? (list|object) is not a single"):
        native(body)


def test_native_one_row_with_a_nested_cell() -> None:
    with pytest.raises(BadRequest, match=r"column 'a', row 0"):
        native({"instances": [{"a": [[[[1]]]]}]})


def test_native_deeply_nested_body_is_a_400() -> None:
    deep = b'{"instances": [' + b"[" * 50_000 + b"]" * 50_000 + b"]}"
    with pytest.raises(BadRequest):
        native(deep)


def test_native_row_cap() -> None:
    assert native({"instances": [{"a": 1}] * 10}, max_rows=10).n_rows == 10
    with pytest.raises(PayloadTooLarge, match=r"^11 rows > 10 per request; use `atoll predict`"):
        native({"instances": [{"a": 1}] * 11}, max_rows=10)
    with pytest.raises(PayloadTooLarge, match="11 rows > 10"):
        native({"columns": ["a"], "data": [[1]] * 11}, max_rows=10)


@pytest.mark.parametrize(
    "body", [b"NaN", b'{"instances": [{"a": NaN}]}', b'{"instances": [{"a": 1e999}]}']
)
def test_native_refuses_non_finite_literals(body: bytes) -> None:
    with pytest.raises(BadRequest, match="not valid JSON"):
        native(body)


# --- native: Arrow IPC stream ---


def test_arrow_stream_plain_types() -> None:
    table = pa.table(
        {
            "n": pa.array([1, None, 3], pa.int32()),
            "x": [0.5, 1.5, None],
            "s": ["a", None, "c"],
            "b": [True, False, None],
            "d": pa.array([1, 2, 3], pa.float16()),
            "m": pa.array(["1.25", "2", None]).cast(pa.decimal128(5, 2)),
            "bin": pa.array([b"ok", None, b"x"]),
        }
    )
    decoded = native(arrow_stream(table), ARROW_STREAM)
    assert decoded.n_rows == 3
    assert decoded.columns == {
        "n": [1, None, 3],
        "x": [0.5, 1.5, None],
        "s": ["a", None, "c"],
        "b": [True, False, None],
        "d": [1.0, 2.0, 3.0],
        "m": [1.25, 2.0, None],
        "bin": ["ok", None, "x"],
    }


def test_arrow_stream_dictionary_and_several_batches() -> None:
    table = pa.table({"c": pa.array(["x", "y", None, "x"]).dictionary_encode(), "n": [1, 2, 3, 4]})
    batches = pa.Table.from_batches(table.to_batches(max_chunksize=1))
    decoded = native(arrow_stream(batches), ARROW_STREAM)
    assert decoded.columns == {"c": ["x", "y", None, "x"], "n": [1, 2, 3, 4]}
    assert decoded.n_rows == 4


def test_arrow_stream_timestamps_become_datetimes() -> None:
    table = pa.table({"t": pa.array([0, None], pa.timestamp("s", tz="UTC"))})
    values = native(arrow_stream(table), ARROW_STREAM).columns["t"]
    assert values[0].year == 1970 and values[1] is None


def test_arrow_stream_row_cap_is_read_from_the_headers() -> None:
    table = pa.table({"a": list(range(11))})
    with pytest.raises(PayloadTooLarge, match="11 rows > 10"):
        native(arrow_stream(table), ARROW_STREAM, max_rows=10)


@pytest.mark.parametrize("codec", ["zstd", "lz4"])
def test_arrow_stream_refuses_compressed_buffers(codec: str) -> None:
    table = pa.table({"a": ["x" * 1000] * 10})
    with pytest.raises(UnsupportedMediaType, match="compressed"):
        native(arrow_stream(table, compression=codec), ARROW_STREAM)


def test_arrow_stream_refuses_a_dictionary_that_expands_too_far() -> None:
    big = "x" * (1 << 20)
    column = pa.DictionaryArray.from_arrays(pa.array([0] * 100, pa.int32()), pa.array([big]))
    with pytest.raises(PayloadTooLarge, match="dictionary"):
        native(arrow_stream(pa.table({"c": column})), ARROW_STREAM)


@pytest.mark.parametrize(
    ("column", "match"),
    [
        (pa.array([None, [1, 2]]), r"column 'c', row 1: a list or struct"),
        (pa.array([{"x": 1}]), r"column 'c', row 0"),
        (pa.array([1, 2], pa.duration("s")), "Arrow type duration"),
        (pa.array([b"\xff\xfe"]), "cannot be read"),
    ],
)
def test_arrow_stream_refuses_unreadable_columns(column: pa.Array, match: str) -> None:
    with pytest.raises(BadRequest, match=match):
        native(arrow_stream(pa.table({"c": column})), ARROW_STREAM)


def test_arrow_stream_refuses_repeated_names() -> None:
    table = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"])
    with pytest.raises(BadRequest, match="repeat"):
        native(arrow_stream(table), ARROW_STREAM)


def test_arrow_stream_with_no_rows() -> None:
    table = pa.table({"a": pa.array([], pa.int64())})
    with pytest.raises(BadRequest, match="empty"):
        native(arrow_stream(table), ARROW_STREAM)


@pytest.mark.parametrize("cut", [0, 7, 100, -9])
def test_arrow_stream_refuses_garbage_and_truncation(cut: int) -> None:
    good = arrow_stream(pa.table({"a": list(range(50)), "s": ["abc"] * 50}))
    body = b"garbage" if cut == 0 else good[:cut]
    with pytest.raises(BadRequest, match="Arrow"):
        native(body, ARROW_STREAM)


# --- KServe V2 ---


def test_v2_one_tensor_per_column() -> None:
    body = {
        "id": "req-7",
        "model_name": "credit",
        "parameters": {"content_type": "pd"},
        "inputs": [
            tensor("age", [41, 30], [2], "INT64"),
            tensor("income", [[1.5], [2.5]], [2, 1]),
            tensor("city", ["Oslo", "Bergen"], [2], "BYTES"),
            tensor("flag", [True, False], [2], "BOOL"),
        ],
        "outputs": [{"name": "predict"}],
    }
    decoded = v2(body)
    assert decoded.columns == {
        "age": [41, 30],
        "income": [1.5, 2.5],
        "city": ["Oslo", "Bergen"],
        "flag": [True, False],
    }
    assert decoded.n_rows == 2
    assert decoded.request_id == "req-7"
    assert decoded.parameters == {"content_type": "pd"}


def test_v2_keeps_names_as_given() -> None:
    decoded = v2({"inputs": [tensor("Unknown Col", [1], [1]), tensor("age", [2], [1])]})
    assert list(decoded.columns) == ["Unknown Col", "age"]


@pytest.mark.parametrize(
    "data", [[1, 2, 3, 4, 5, 6], [[1, 2, 3], [4, 5, 6]]], ids=["flat", "nested"]
)
def test_v2_one_2d_tensor_maps_positions_to_the_inputs(data: list[Any]) -> None:
    decoded = v2({"inputs": [tensor("input-0", data, [2, 3], "FP32")]})
    assert decoded.columns == {"age": [1, 4], "income": [2, 5], "city": [3, 6]}
    assert decoded.n_rows == 2


def test_v2_single_column_tensor_named_like_a_column() -> None:
    decoded = v2({"inputs": [tensor("income", [[1.0], [2.0]], [2, 1])]})
    assert decoded.columns == {"income": [1.0, 2.0]}


def test_v2_single_input_model_reads_an_n_by_1_matrix() -> None:
    decoded = v2({"inputs": [tensor("x", [[1.0], [2.0]], [2, 1])]}, names=["only"])
    assert decoded.columns == {"only": [1.0, 2.0]}


@pytest.mark.parametrize(
    "headers",
    [{}, {"content-type": "application/json"}, {"content-type": "application/octet-stream"}],
)
def test_v2_reads_any_or_no_content_type(headers: dict[str, str]) -> None:
    assert v2({"inputs": [tensor("age", [1], [1])]}, headers).n_rows == 1


def test_v2_binary_tensor_extension_matrix() -> None:
    values = np.arange(6, dtype="<f4")
    head = {
        "id": "b1",
        "inputs": [
            {
                "name": "x",
                "shape": [2, 3],
                "datatype": "FP32",
                "parameters": {"binary_data_size": 24},
            }
        ],
        "parameters": {"binary_data_output": True},
    }
    body, headers = binary_request(head, [values.tobytes()])
    decoded = v2(body, headers)
    assert decoded.columns == {"age": [0.0, 3.0], "income": [1.0, 4.0], "city": [2.0, 5.0]}
    assert decoded.request_id == "b1"


def test_v2_binary_per_column_of_every_kind_mixed_with_json() -> None:
    head = {
        "inputs": [
            {
                "name": "i",
                "shape": [2],
                "datatype": "INT64",
                "parameters": {"binary_data_size": 16},
            },
            tensor("j", [7, 8], [2], "INT32"),
            {"name": "b", "shape": [2], "datatype": "BOOL", "parameters": {"binary_data_size": 2}},
            {
                "name": "s",
                "shape": [2, 1],
                "datatype": "BYTES",
                "parameters": {"binary_data_size": 13},
            },
            {"name": "h", "shape": [2], "datatype": "FP16", "parameters": {"binary_data_size": 4}},
        ]
    }
    blobs = [
        np.array([-1, 2**40], "<i8").tobytes(),
        bytes([1, 0]),
        bytes_elements(b"abc", "é".encode()),
        np.array([0.5, 2.0], "<f2").tobytes(),
    ]
    body, headers = binary_request(head, blobs)
    decoded = v2(body, headers)
    assert decoded.columns == {
        "i": [-1, 2**40],
        "j": [7, 8],
        "b": [True, False],
        "s": ["abc", "é"],
        "h": [0.5, 2.0],
    }


@pytest.mark.parametrize(
    ("size", "blob", "match"),
    [
        (12, np.zeros(2, "<f8").tobytes()[:12], "12 bytes do not hold 2 FP64"),
        (32, np.zeros(2, "<f8").tobytes(), "runs past"),
        (16, np.zeros(3, "<f8").tobytes(), "belong to no input"),
        (-1, b"", "byte count"),
        (True, b"", "byte count"),
    ],
)
def test_v2_binary_sizes_must_match(size: Any, blob: bytes, match: str) -> None:
    head = {
        "inputs": [
            {
                "name": "a",
                "shape": [2],
                "datatype": "FP64",
                "parameters": {"binary_data_size": size},
            }
        ]
    }
    body, headers = binary_request(head, [blob])
    with pytest.raises(BadRequest, match=match):
        v2(body, headers)


@pytest.mark.parametrize(
    ("blob", "match"),
    [
        (bytes_elements(b"a"), "1 BYTES elements for 2"),
        (bytes_elements(b"a", b"\xff"), "not UTF-8"),
        (bytes_elements(b"a") + struct.pack("<I", 100) + b"x", "runs past"),
        (bytes_elements(b"a") + b"\x01", "runs past"),
    ],
)
def test_v2_binary_bytes_elements_are_checked(blob: bytes, match: str) -> None:
    head = {
        "inputs": [
            {
                "name": "s",
                "shape": [2],
                "datatype": "BYTES",
                "parameters": {"binary_data_size": len(blob)},
            }
        ]
    }
    body, headers = binary_request(head, [blob])
    with pytest.raises(BadRequest, match=match):
        v2(body, headers)


def test_v2_binary_and_data_together() -> None:
    head = {
        "inputs": [
            {
                "name": "a",
                "shape": [1],
                "datatype": "FP64",
                "data": [1.0],
                "parameters": {"binary_data_size": 8},
            }
        ]
    }
    body, headers = binary_request(head, [np.zeros(1).tobytes()])
    with pytest.raises(BadRequest, match="both data and binary_data_size"):
        v2(body, headers)


@pytest.mark.parametrize("length", ["0", "-3", "abc", "999999", "1" * 5000, "1 2", "+5"])
def test_v2_header_length_must_be_within_the_body(length: str) -> None:
    with pytest.raises(BadRequest, match="Inference-Header-Content-Length"):
        v2({"inputs": [tensor("a", [1], [1])]}, {"Inference-Header-Content-Length": length})


def test_v2_gzip_covers_the_whole_body_including_binary() -> None:
    head = {
        "inputs": [
            {"name": "a", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}}
        ]
    }
    body, headers = binary_request(head, [np.array([1.5, 2.5]).tobytes()])
    decoded = v2(gzip.compress(body), {**headers, "Content-Encoding": "gzip"})
    assert decoded.columns == {"a": [1.5, 2.5]}


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "GZIP", "deflate", "identity"])
def test_v2_content_encodings(encoding: str) -> None:
    raw = orjson.dumps({"inputs": [tensor("a", [1.0], [1])]})
    compressors: dict[str, Callable[[bytes], bytes]] = {"deflate": zlib.compress, "identity": bytes}
    compress = compressors.get(encoding.lower(), gzip.compress)
    assert v2(compress(raw), {"Content-Encoding": encoding}).columns == {"a": [1.0]}


def test_v2_gzip_of_several_members() -> None:
    raw = orjson.dumps({"inputs": [tensor("a", [1.0], [1])]})
    body = gzip.compress(raw[:10]) + gzip.compress(raw[10:])
    assert v2(body, {"Content-Encoding": "gzip"}).n_rows == 1


def test_v2_gzip_bomb_stops_at_the_cap() -> None:
    bomb = gzip.compress(b'{"inputs": [' + b" " * (4 << 20) + b"]}")
    assert len(bomb) < 10_000
    with pytest.raises(PayloadTooLarge, match=f"inflates past {CAP} bytes"):
        v2(bomb, {"Content-Encoding": "gzip"})


def test_v2_gzip_bomb_split_over_members_stops_at_the_cap() -> None:
    member = gzip.compress(b" " * (CAP // 2 + 1))
    with pytest.raises(PayloadTooLarge):
        v2(member * 3, {"Content-Encoding": "gzip"})


def test_v2_gzip_members_are_bounded() -> None:
    with pytest.raises(BadRequest, match="more than 64 gzip members"):
        v2(gzip.compress(b"") * 1000, {"Content-Encoding": "gzip"})


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (gzip.compress(b'{"inputs": []}', mtime=0)[:-12], "truncated"),
        (b"not gzip at all", "not valid gzip"),
        (gzip.compress(b"{}", mtime=0) + b"trailing", "not valid gzip"),
    ],
)
def test_v2_broken_gzip(body: bytes, match: str) -> None:
    with pytest.raises(BadRequest, match=match):
        v2(body, {"Content-Encoding": "gzip"})


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip, gzip", "compress"])
def test_v2_unknown_content_encoding(encoding: str) -> None:
    with pytest.raises(UnsupportedMediaType, match="Content-Encoding"):
        v2({"inputs": [tensor("a", [1], [1])]}, {"Content-Encoding": encoding})


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ([], "inputs"),
        ({}, "inputs"),
        ({"inputs": []}, "inputs"),
        ({"inputs": {"a": 1}}, "inputs"),
        ({"inputs": ["x"]}, r"inputs\[0\] is not an object"),
        ({"inputs": [{"shape": [1], "datatype": "FP64", "data": [1]}]}, r"inputs\[0\].name"),
        ({"inputs": [tensor("a", [1], [1], "FLOAT")]}, r"inputs\[0\].datatype must be one of"),
        ({"inputs": [tensor("a", [1], [1], ["FP64"])]}, r"datatype"),  # type: ignore[arg-type]
        ({"inputs": [tensor("a", [1], [-1])]}, r"inputs\[0\].shape"),
        ({"inputs": [tensor("a", [1], [True])]}, r"inputs\[0\].shape"),
        ({"inputs": [tensor("a", [1], [1, 1, 1])]}, r"inputs\[0\].shape"),
        ({"inputs": [tensor("a", [1], [])]}, r"inputs\[0\].shape"),
        ({"inputs": [tensor("a", [1], "1")]}, r"inputs\[0\].shape"),  # type: ignore[arg-type]
        ({"inputs": [tensor("a", [1], [1.0])]}, r"inputs\[0\].shape"),  # type: ignore[list-item]
        (
            {"inputs": [tensor("a", [1, 2], [2]), tensor("b", [1, 2, 3], [2])]},
            r"inputs\[1\].shape \[2\] does not match 3 values",
        ),
        (
            {"inputs": [tensor("a", [1], [1]), tensor("b", [1, 2], [2])]},
            r"inputs\[1\] \('b'\) has 2 rows; inputs\[0\] has 1",
        ),
        ({"inputs": [tensor("a", [1], [1]), tensor("a", [2], [1])]}, "used twice"),
        ({"inputs": [tensor("a", 1, [1])]}, r"inputs\[0\].data must be a list"),
        ({"inputs": [{"name": "a", "shape": [1], "datatype": "FP64"}]}, "data must be a list"),
        ({"inputs": [tensor("a", [], [0])]}, "empty"),
        ({"inputs": [tensor("x", [1, 2], [1, 2])]}, r"one column per model input, 3"),
        (
            {"inputs": [tensor("x", [1, 2], [1, 2]), tensor("age", [1], [1])]},
            "send one \\[n\\] tensor per column",
        ),
        ({"inputs": [tensor("age", [[1, 2], 3], [2, 1])]}, "mixes nested and flat"),
        ({"inputs": [tensor("a", [1], [1])], "id": 7}, "id must be a string"),
        ({"inputs": [tensor("a", [1], [1])], "parameters": [1]}, "parameters must be an object"),
    ],
)
def test_v2_refuses_malformed_requests(body: Any, match: str) -> None:
    with pytest.raises(BadRequest, match=match):
        v2(body)


@pytest.mark.parametrize(
    ("inputs", "match"),
    [
        ([tensor("a", [1, [2]], [2])], r"column 'a', row 1: a list"),
        ([tensor("age", [[[1]], [[2]]], [2, 1])], r"column 'age', row 0: a list"),
        ([tensor("a", [1, {"b": 1}], [2])], r"column 'a', row 1: an object"),
        ([tensor("m", [1, 2, 3, 4, 5, [6]], [2, 3])], r"column 'city', row 1: a list"),
    ],
)
def test_v2_refuses_nested_cells_naming_column_and_row(inputs: list[Any], match: str) -> None:
    with pytest.raises(BadRequest, match=match):
        v2({"inputs": inputs})


def test_v2_row_cap() -> None:
    assert v2({"inputs": [tensor("a", [1] * 5, [5])]}, max_rows=5).n_rows == 5
    with pytest.raises(PayloadTooLarge, match="6 rows > 5 per request; use `atoll predict`"):
        v2({"inputs": [tensor("a", [1] * 6, [6])]}, max_rows=5)
    with pytest.raises(PayloadTooLarge, match="1000000 rows > 5"):
        v2({"inputs": [tensor("m", [1], [1_000_000, 3])]}, max_rows=5)


def test_v2_headers_may_be_a_plain_lower_case_mapping() -> None:
    raw = orjson.dumps({"inputs": [tensor("a", [1.0], [1])]})
    decoded = decode_v2(
        gzip.compress(raw),
        {"content-encoding": "gzip"},
        input_names=["a"],
        max_rows=1,
        max_inflated_bytes=CAP,
        max_depth=DEPTH,
    )
    assert decoded.columns == {"a": [1.0]}


# --- MLflow /invocations ---


def test_mlflow_dataframe_split() -> None:
    body = {
        "dataframe_split": {"index": [0, 1], "columns": ["b", "a"], "data": [[1, "x"], [2, "y"]]}
    }
    decoded = mlflow(body)
    assert decoded.columns == {"b": [1, 2], "a": ["x", "y"]}
    assert decoded.n_rows == 2


def test_mlflow_dataframe_split_without_columns_follows_the_inputs() -> None:
    decoded = mlflow({"dataframe_split": {"data": [[1, 2.5, "Oslo"]]}})
    assert decoded.columns == {"age": [1], "income": [2.5], "city": ["Oslo"]}


def test_mlflow_dataframe_records() -> None:
    decoded = mlflow({"dataframe_records": [{"a": 1}, {"b": 2}]})
    assert decoded.columns == {"a": [1, None], "b": [None, 2]}


@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_mlflow_instances_and_inputs_forms(key: str) -> None:
    assert mlflow({key: [{"a": 1}, {"a": 2}]}).columns == {"a": [1, 2]}
    assert mlflow({key: [[1, 2, 3], [4, 5, 6]]}).columns == {
        "age": [1, 4],
        "income": [2, 5],
        "city": [3, 6],
    }
    assert mlflow({key: {"a": [1, 2], "b": ["x", "y"]}}).columns == {"a": [1, 2], "b": ["x", "y"]}
    assert mlflow({key: {"a": 1, "b": "x"}}).columns == {"a": [1], "b": ["x"]}
    single = mlflow({key: [1.0, 2.0, 5.0]}, names=["x"])
    assert single.columns == {"x": [1.0, 2.0, 5.0]}
    assert single.n_rows == 3


def test_mlflow_keeps_params_and_ignores_other_keys() -> None:
    decoded = mlflow({"inputs": [{"a": 1}], "params": {"k": 1}, "other": 2})
    assert decoded.parameters == {"k": 1}
    assert decoded.columns == {"a": [1]}


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ([{"a": 1}], "exactly one of dataframe_split"),
        ({}, "exactly one of"),
        ({"instances": [{"a": 1}], "inputs": [{"a": 1}]}, "it has instances, inputs"),
        ({"inputs": [{"a": 1}], "params": 3}, "params must be an object"),
        ({"dataframe_split": [[1]]}, "dataframe_split must be"),
        ({"dataframe_split": {"columns": ["a"]}}, "dataframe_split must be"),
        ({"dataframe_split": {"columns": "a", "data": [[1]]}}, "columns must be a list"),
        ({"dataframe_split": {"columns": None, "data": [[1]]}}, "columns must be a list"),
        ({"dataframe_split": {"data": [[1, 2]]}}, r"has 2 values; expected 3 in this order: age"),
        ({"dataframe_split": {"data": []}}, "empty"),
        ({"dataframe_records": {"a": 1}}, "dataframe_records must be a list"),
        ({"dataframe_records": [{"a": 1}, 2]}, r"dataframe_records\[1\] is not an object"),
        ({"inputs": "x"}, "inputs must be a list"),
        ({"inputs": []}, "inputs is empty"),
        ({"inputs": {}}, "inputs is empty"),
        ({"inputs": [1, 2]}, "list of rows"),
        ({"inputs": [[1, 2, 3], {"a": 1}]}, r"inputs\[1\] is not a list"),
        ({"inputs": [{"a": 1}, [1, 2, 3]]}, r"inputs\[1\] is not an object"),
        ({"inputs": {"a": [1, 2], "b": [1]}}, "column 'b' has 1 values but 'a' has 2"),
        ({"inputs": {"a": [1], "b": 1}}, "inputs.b must be a list"),
        ({"instances": [[1, 2, [3]]]}, r"column 'city', row 0: a list"),
        ({"inputs": {"a": {"x": 1}}}, r"column 'a', row 0: an object"),
    ],
)
def test_mlflow_refuses_malformed_json(body: Any, match: str) -> None:
    with pytest.raises(BadRequest, match=match):
        mlflow(body)


def test_mlflow_row_cap() -> None:
    with pytest.raises(PayloadTooLarge, match="4 rows > 3"):
        mlflow({"dataframe_split": {"columns": ["a"], "data": [[1]] * 4}}, max_rows=3)
    with pytest.raises(PayloadTooLarge, match="4 rows > 3"):
        mlflow({"inputs": {"a": [1] * 4}}, max_rows=3)
    with pytest.raises(PayloadTooLarge, match="4 rows > 3"):
        mlflow(b"a\n1\n2\n3\n4\n", "text/csv", max_rows=3)


@pytest.mark.parametrize(
    ("content_type", "match"),
    [
        (None, "none"),
        ("", "none"),
        ("text/plain", "text/plain"),
        ("application/octet-stream", "not supported"),
        ("application/json; charset=latin-1", "latin-1"),
        ("text/csv; charset=utf-16", "utf-16"),
        ("application/json; format=pandas-split", "format"),
        (ARROW_STREAM, "not supported"),
    ],
)
def test_mlflow_refuses_other_media_types(content_type: str | None, match: str) -> None:
    with pytest.raises(UnsupportedMediaType, match=match):
        mlflow({"inputs": [{"a": 1}]}, content_type)


@pytest.mark.parametrize(
    "content_type", ["text/csv", "application/csv", "text/csv; charset=utf-8", "TEXT/CSV"]
)
def test_mlflow_csv(content_type: str) -> None:
    body = b'n,x,s,b,"Monthly Income"\n1,0.5,abc,true,10\n2,,"q, ""r""",false,\n'
    decoded = mlflow(body, content_type)
    assert decoded.n_rows == 2
    assert decoded.columns == {
        "n": [1, 2],
        "x": [0.5, None],
        "s": ["abc", 'q, "r"'],
        "b": [True, False],
        "Monthly Income": [10, None],
    }


def test_mlflow_csv_bad_value_keeps_the_column_as_text_for_the_validator() -> None:
    decoded = mlflow(b"age,city\n41,Oslo\nold,Bergen\n", "text/csv")
    assert decoded.columns == {"age": ["41", "old"], "city": ["Oslo", "Bergen"]}


def test_mlflow_csv_quoted_newlines_and_bom() -> None:
    decoded = mlflow(b'\xef\xbb\xbfa,b\n1,"two\nlines"\n', "text/csv")
    assert decoded.columns == {"a": [1], "b": ["two\nlines"]}


def test_mlflow_csv_bad_value_in_a_late_block_does_not_fail_the_parse() -> None:
    rows = b"".join(b"%d\n" % i for i in range(60_000))
    decoded = mlflow(b"a\n" + rows + b"x\n", "text/csv", max_rows=100_000)
    assert decoded.n_rows == 60_001
    assert decoded.columns["a"][-1] == "x"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"", "empty"),
        (b"  \n", "empty"),
        (b"a,b\n", "empty"),
        (b"a,b\n1,2,3\n", "cannot be read"),
        (b"a,a\n1,2\n", "repeat"),
        (b"a\n\xff\xfe\n", "cannot be read"),
    ],
)
def test_mlflow_csv_refusals(body: bytes, match: str) -> None:
    with pytest.raises(BadRequest, match=match):
        mlflow(body, "text/csv")


# --- encoders ---


def binary_prediction(n: int = 3, dtype: Any = np.float64) -> Prediction:
    probabilities = np.array([[0.75, 0.25], [0.125, 0.875], [0.5, 0.5]][:n], dtype=dtype)
    return Prediction(np.array([0, 1, 0][:n]), probabilities, [0, 1])


def test_encode_native_classifier() -> None:
    body = orjson.loads(
        encode_native(
            binary_prediction(), model="credit", version=3, prediction_ids=["a", "b", "c"]
        )
    )
    assert body == {
        "model": "credit",
        "version": 3,
        "predictions": [
            {"id": "a", "prediction": 0, "probabilities": {"0": 0.75, "1": 0.25}},
            {"id": "b", "prediction": 1, "probabilities": {"0": 0.125, "1": 0.875}},
            {"id": "c", "prediction": 0, "probabilities": {"0": 0.5, "1": 0.5}},
        ],
    }


def test_encode_native_agrees_with_prediction_to_records() -> None:
    rng = np.random.default_rng(0)
    for k in (2, 3, 5):
        probabilities = rng.dirichlet(np.ones(k), size=20)
        classes = [f"class {i}" for i in range(k)]
        labels = np.array(classes)[probabilities.argmax(axis=1)]
        pred = Prediction(labels, probabilities, classes)
        ids = [f"id{i}" for i in range(20)]
        body = orjson.loads(encode_native(pred, model="m", version=1, prediction_ids=ids))
        expected = [{"id": i} | row for i, row in zip(ids, pred.to_records(), strict=True)]
        assert body["predictions"] == expected


def test_encode_native_probabilities_are_float64() -> None:
    pred = binary_prediction(dtype=np.float32)
    pred = Prediction(pred.predictions, np.array([[0.1, 0.9]] * 3, dtype=np.float32), [0, 1])
    body = orjson.loads(encode_native(pred, model="m", version=1, prediction_ids=["a", "b", "c"]))
    assert body["predictions"][0]["probabilities"]["0"] == float(np.float32(0.1))


def test_encode_native_regression_has_no_probabilities() -> None:
    pred = Prediction(np.array([1.5, -2.0]), None, [])
    body = orjson.loads(encode_native(pred, model="m", version=2, prediction_ids=["a", "b"]))
    assert body["predictions"] == [{"id": "a", "prediction": 1.5}, {"id": "b", "prediction": -2.0}]


def test_encode_native_refuses_probabilities_that_do_not_fit_the_classes() -> None:
    pred = Prediction(np.array([0]), np.array([[0.5, 0.25, 0.25]]), [0, 1])
    with pytest.raises(ServeError) as caught:
        encode_native(pred, model="m", version=1, prediction_ids=["a"])
    assert caught.value.status == 500


def test_encode_v2_classifier() -> None:
    body = orjson.loads(
        encode_v2(
            binary_prediction(),
            model="credit",
            version=3,
            request_id="req-1",
            prediction_ids=["a", "b", "c"],
        )
    )
    assert body == {
        "model_name": "credit",
        "model_version": "3",
        "id": "req-1",
        "outputs": [
            {"name": "predict", "datatype": "INT64", "shape": [3], "data": [0, 1, 0]},
            {
                "name": "predict_proba",
                "datatype": "FP64",
                "shape": [3, 2],
                "data": [0.75, 0.25, 0.125, 0.875, 0.5, 0.5],
                "parameters": {"classes": [0, 1]},
            },
            {"name": "prediction_id", "datatype": "BYTES", "shape": [3], "data": ["a", "b", "c"]},
        ],
    }


@pytest.mark.parametrize(
    ("labels", "datatype", "data"),
    [
        (np.array([1.5, 2.0]), "FP64", [1.5, 2.0]),
        (np.array([1.5, 2.0], dtype=np.float32), "FP64", [1.5, 2.0]),
        (np.array([True, False]), "BOOL", [True, False]),
        (np.array(["yes", "no"]), "BYTES", ["yes", "no"]),
        (np.array([3, 4], dtype=np.uint8), "INT64", [3, 4]),
    ],
)
def test_encode_v2_datatypes(labels: np.ndarray, datatype: str, data: list[Any]) -> None:
    pred = Prediction(labels, None, [])
    body = orjson.loads(
        encode_v2(pred, model="m", version=1, request_id=None, prediction_ids=["a", "b"])
    )
    assert "id" not in body
    assert [o["name"] for o in body["outputs"]] == ["predict", "prediction_id"]
    assert body["outputs"][0] == {
        "name": "predict",
        "datatype": datatype,
        "shape": [2],
        "data": data,
    }


def test_encode_v2_non_contiguous_probabilities() -> None:
    probabilities = np.asfortranarray(np.array([[0.25, 0.75], [0.5, 0.5]]))
    pred = Prediction(np.array([1, 0]), probabilities, [0, 1])
    body = orjson.loads(
        encode_v2(pred, model="m", version=1, request_id=None, prediction_ids=["a", "b"])
    )
    assert body["outputs"][1]["data"] == [0.25, 0.75, 0.5, 0.5]


def test_encode_mlflow() -> None:
    assert orjson.loads(encode_mlflow(binary_prediction(), prediction_ids=["a", "b", "c"])) == {
        "predictions": [0, 1, 0],
        "ids": ["a", "b", "c"],
    }
    pred = Prediction(np.array(["low", "high"]), None, [])
    assert orjson.loads(encode_mlflow(pred, prediction_ids=["a", "b"]))["predictions"] == [
        "low",
        "high",
    ]


def metadata_schema() -> Schema:
    return Schema(
        {
            "age": Column(type="int"),
            "income": Column(type="float"),
            "member": Column(type="bool"),
            "city": Column(type="category"),
            "note": Column(type="string"),
            "seen": Column(type="datetime"),
            "label": Column(type="category", role="target"),
        },
        target="label",
    )


def test_v2_model_metadata_classifier() -> None:
    body = v2_model_metadata("credit", ["1", 3], metadata_schema(), Task.BINARY, ["no", "yes"])
    assert body["name"] == "credit"
    assert body["versions"] == ["1", "3"]
    assert body["platform"] == "atoll_tabular"
    assert body["inputs"] == [
        {"name": "age", "datatype": "INT64", "shape": [-1]},
        {"name": "income", "datatype": "FP64", "shape": [-1]},
        {"name": "member", "datatype": "BOOL", "shape": [-1]},
        {"name": "city", "datatype": "BYTES", "shape": [-1]},
        {"name": "note", "datatype": "BYTES", "shape": [-1]},
        {"name": "seen", "datatype": "BYTES", "shape": [-1]},
    ]
    assert body["outputs"] == [
        {"name": "predict", "datatype": "BYTES", "shape": [-1]},
        {
            "name": "predict_proba",
            "datatype": "FP64",
            "shape": [-1, 2],
            "parameters": {"classes": ["no", "yes"]},
        },
        {"name": "prediction_id", "datatype": "BYTES", "shape": [-1]},
    ]
    orjson.dumps(body)


def test_v2_model_metadata_predict_type_follows_the_labels() -> None:
    schema = metadata_schema()
    ints = v2_model_metadata("m", ["1"], schema, Task.MULTICLASS, [0, 1, 2])
    assert ints["outputs"][0]["datatype"] == "INT64"
    regression = v2_model_metadata("m", ["1"], schema, Task.REGRESSION, [])
    assert [o["name"] for o in regression["outputs"]] == ["predict", "prediction_id"]
    assert regression["outputs"][0]["datatype"] == "FP64"


def test_encoded_v2_round_trips_through_the_v2_decoder_shape_rules() -> None:
    """What encode_v2 writes is a valid V2 tensor list (same shape rules as requests)."""
    body = orjson.loads(
        encode_v2(
            binary_prediction(),
            model="m",
            version=1,
            request_id=None,
            prediction_ids=["a", "b", "c"],
        )
    )
    decoded = v2({"inputs": body["outputs"][:1] + body["outputs"][2:]})
    assert decoded.columns == {"predict": [0, 1, 0], "prediction_id": ["a", "b", "c"]}


# --- properties: any body is a Decoded or a ServeError, never another exception ---

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)
KEYS = "instances columns data inputs dataframe_split dataframe_records name shape datatype id"
keys = st.sampled_from([*KEYS.split(), "parameters", "binary_data_size", "params", "age"])
shaped = st.recursive(
    json_scalars | st.sampled_from(["FP64", "BYTES", "BOOL", "INT64", "age", "city"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(keys, children, max_size=5)
        | st.lists(st.integers(min_value=-1, max_value=3), max_size=3)
    ),
    max_leaves=30,
)

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


def assert_well_formed(decoded: Decoded) -> None:
    assert decoded.n_rows >= 1
    for name, values in decoded.columns.items():
        assert isinstance(name, str)
        assert len(values) == decoded.n_rows
        assert not any(isinstance(v, list | dict | tuple) for v in values)


def decode_all(body: bytes, headers: dict[str, str]) -> None:
    decoders: list[Callable[[], Decoded]] = [
        lambda: native(body, headers.get("content-type")),
        lambda: mlflow(body, headers.get("content-type", JSON)),
        lambda: v2(body, headers),
    ]
    for decode in decoders:
        try:
            decoded = decode()
        except ServeError:
            continue
        assert_well_formed(decoded)


@PROPERTY
@given(value=json_values | shaped)
def test_any_json_body_decodes_or_is_refused_cleanly(value: Any) -> None:
    decode_all(orjson.dumps(value), {})


@PROPERTY
@given(
    rows=st.lists(
        st.dictionaries(st.sampled_from("abcd"), json_scalars, max_size=4), min_size=1, max_size=6
    )
)
def test_records_match_a_plain_reference(rows: list[dict[str, Any]]) -> None:
    names: list[str] = []
    for row in rows:
        names += [k for k in row if k not in names]
    expected = {name: [row.get(name) for row in rows] for name in names}
    decoded = native({"instances": rows})
    assert decoded.columns == expected
    assert list(decoded.columns) == names


@PROPERTY
@given(
    body=st.binary(max_size=200),
    content_type=st.sampled_from([None, JSON, ARROW_STREAM, "text/csv", "application/csv"]),
    encoding=st.sampled_from([None, "gzip", "deflate"]),
    header_length=st.none() | st.integers(min_value=-2, max_value=220).map(str),
)
def test_any_bytes_decode_or_are_refused_cleanly(
    body: bytes, content_type: str | None, encoding: str | None, header_length: str | None
) -> None:
    headers = {}
    if content_type:
        headers["content-type"] = content_type
    if encoding:
        headers["content-encoding"] = encoding
    if header_length is not None:
        headers["inference-header-content-length"] = header_length
    decode_all(body, headers)


@PROPERTY
@given(
    blob=st.binary(max_size=64),
    datatype=st.sampled_from(["BOOL", "INT8", "UINT16", "INT64", "FP16", "FP32", "FP64", "BYTES"]),
    shape=st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=2),
    size=st.integers(min_value=-1, max_value=70),
)
def test_any_binary_tensor_decodes_or_is_refused_cleanly(
    blob: bytes, datatype: str, shape: list[int], size: int
) -> None:
    head = {
        "inputs": [
            {
                "name": "age",
                "shape": shape,
                "datatype": datatype,
                "parameters": {"binary_data_size": size},
            }
        ]
    }
    body, headers = binary_request(head, [blob])
    try:
        decoded = v2(body, headers)
    except ServeError:
        return
    assert_well_formed(decoded)


@PROPERTY
@given(
    table=st.lists(
        st.tuples(st.integers(min_value=-(2**40), max_value=2**40), st.text(max_size=5)),
        min_size=1,
        max_size=10,
    ),
    cut=st.integers(min_value=0, max_value=2000),
)
def test_truncated_arrow_streams_are_refused_cleanly(
    table: list[tuple[int, str]], cut: int
) -> None:
    body = arrow_stream(pa.table({"n": [r[0] for r in table], "s": [r[1] for r in table]}))
    try:
        decoded = native(body[:cut] if cut < len(body) else body, ARROW_STREAM)
    except ServeError:
        return
    assert decoded.columns == {"n": [r[0] for r in table], "s": [r[1] for r in table]}


@PROPERTY
@given(
    labels=st.lists(st.integers(min_value=0, max_value=2), min_size=1, max_size=20),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_encoders_write_what_the_prediction_holds(labels: list[int], seed: int) -> None:
    n = len(labels)
    probabilities = np.random.default_rng(seed).dirichlet(np.ones(3), size=n)
    pred = Prediction(np.array(labels), probabilities, [0, 1, 2])
    ids = [f"p{i}" for i in range(n)]
    native_body = orjson.loads(encode_native(pred, model="m", version=1, prediction_ids=ids))
    assert [r["prediction"] for r in native_body["predictions"]] == labels
    assert [list(r["probabilities"].values()) for r in native_body["predictions"]] == (
        probabilities.tolist()
    )
    v2_body = orjson.loads(
        encode_v2(pred, model="m", version=1, request_id=None, prediction_ids=ids)
    )
    assert v2_body["outputs"][1]["data"] == probabilities.reshape(-1).tolist()
    assert orjson.loads(encode_mlflow(pred, prediction_ids=ids))["predictions"] == labels
