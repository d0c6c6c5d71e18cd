"""Request bodies in each wire format, and checks on what a real server answers.

Shared by the tests that drive a real ``atoll serve`` (test_server_*.py, test_parity.py).
"""

from __future__ import annotations

import csv
import io
import re
import struct
from collections.abc import Sequence
from typing import Any

import httpx
import orjson
import pyarrow as pa

Rows = list[dict[str, Any]]

PREDICT = "/v1/models/{name}/predict"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
LEAKS = re.compile(
    r"Traceback|File \"|\.py\b|\b\w+(Error|Exception)\b|\b(BadRequest|PayloadTooLarge|"
    r"UnsupportedMediaType|RequestTimeout|TooManyRequests|Unauthorized|Forbidden|NotFound|"
    r"HTTPException|orjson|starlette|uvicorn|sqlalchemy|pandas|numpy|pyarrow)\b"
)


def columns_of(rows: Rows) -> dict[str, list[Any]]:
    """Records as columns (the union of keys; a key absent in a row is None)."""
    names = list(dict.fromkeys(name for row in rows for name in row))
    return {name: [row.get(name) for row in rows] for name in names}


def columns_body(rows: Rows) -> dict[str, Any]:
    """The native ``{"columns": [...], "data": [[...]]}`` form."""
    names = list(columns_of(rows))
    return {"columns": names, "data": [[row.get(n) for n in names] for row in rows]}


def arrow_stream(rows: Rows) -> bytes:
    """An Arrow IPC stream of the rows (what a bulk client sends)."""
    table = pa.Table.from_pylist(rows)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def csv_body(rows: Rows) -> str:
    """A CSV with a header row; None is an empty field."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns_of(rows)), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


def _cast(value: Any, datatype: str) -> Any:
    if value is None:
        return None
    if datatype == "BYTES":
        return str(value)
    if datatype.startswith("FP"):
        return float(value)
    if datatype == "BOOL":
        return bool(value)
    return int(value)


def v2_inputs(rows: Rows, datatypes: dict[str, str]) -> list[dict[str, Any]]:
    """One V2 tensor per column (MLServer ``pd`` style), typed as the model metadata says."""
    columns = columns_of(rows)
    return [
        {
            "name": name,
            "datatype": datatypes[name],
            "shape": [len(rows)],
            "data": [_cast(v, datatypes[name]) for v in values],
        }
        for name, values in columns.items()
    ]


def v2_datatypes(metadata: dict[str, Any]) -> dict[str, str]:
    """``{input name: datatype}`` from a ``GET /v2/models/{name}`` answer."""
    return {tensor["name"]: tensor["datatype"] for tensor in metadata["inputs"]}


def _tensor_bytes(datatype: str, values: Sequence[Any]) -> bytes:
    if datatype == "BYTES":
        encoded = [str(v).encode() for v in values]
        return b"".join(struct.pack("<I", len(e)) + e for e in encoded)
    code = {"FP64": "d", "FP32": "f", "INT64": "q", "INT32": "i", "BOOL": "?"}[datatype]
    return struct.pack(f"<{len(values)}{code}", *values)


def v2_binary(
    inputs: list[dict[str, Any]], request_id: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """The binary tensor extension (tritonclient's default): JSON header, then raw tensors."""
    header_inputs, blobs = [], []
    for tensor in inputs:
        data = tensor["data"]
        flat = [v for row in data for v in row] if data and isinstance(data[0], list) else data
        blob = _tensor_bytes(tensor["datatype"], flat)
        described = {k: v for k, v in tensor.items() if k != "data"}
        described["parameters"] = {"binary_data_size": len(blob)}
        header_inputs.append(described)
        blobs.append(blob)
    request: dict[str, Any] = {"inputs": header_inputs, "parameters": {"binary_data_output": True}}
    if request_id is not None:
        request["id"] = request_id
    head = orjson.dumps(request)
    headers = {"Inference-Header-Content-Length": str(len(head))}
    return head + b"".join(blobs), headers


def v2_outputs(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {tensor["name"]: tensor for tensor in body["outputs"]}


def v2_answers(body: dict[str, Any]) -> list[tuple[Any, list[float]]]:
    """``(label, [probabilities])`` per row from a V2 infer answer."""
    outputs = v2_outputs(body)
    labels = outputs["predict"]["data"]
    proba = outputs["predict_proba"]
    n, k = proba["shape"]
    flat = proba["data"]
    assert len(labels) == n and len(flat) == n * k
    return [(labels[i], flat[i * k : (i + 1) * k]) for i in range(n)]


def native_answers(body: dict[str, Any]) -> list[tuple[Any, list[float]]]:
    """``(label, [probabilities in class order])`` per row from a /v1 predict answer."""
    return [(row["prediction"], list(row["probabilities"].values())) for row in body["predictions"]]


def assert_no_leak(response: httpx.Response) -> None:
    """No traceback, source path, class or library name in a body."""
    found = LEAKS.search(response.text)
    assert found is None, f"{response.status_code} body leaks {found.group(0)!r}: {response.text}"


def assert_json_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The status, a JSON body (Content-Type exactly application/json) and no leak."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json", response.headers
    assert_no_leak(response)
    body: dict[str, Any] = response.json()
    return body


def error_message(body: dict[str, Any]) -> str:
    """The message of an error in any of the three envelopes."""
    error = body.get("error")
    if isinstance(error, dict):
        return str(error["message"])
    if isinstance(error, str):
        return error
    return str(body["message"])


def problems_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Schema problems (rule, column, rows) in any of the three envelopes."""
    error = body.get("error")
    if isinstance(error, dict):
        return list(error.get("problems", []))
    return list(body.get("problems", []))
