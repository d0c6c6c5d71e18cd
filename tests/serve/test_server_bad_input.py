"""Hostile and broken requests against a real ``atoll serve``: each gets the right status and a
clear JSON error (naming the field, row or column where there is one), no body leaks internals,
and the server keeps serving (every test ends with a normal prediction answered 200).
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import re
import select
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from atoll import api
from tests.serve.running import TEST_SERVE, Project, Server, make_project, start_server
from tests.serve.wire import (
    PREDICT,
    Rows,
    assert_json_error,
    columns_body,
    csv_body,
    error_message,
    problems_of,
    v2_datatypes,
    v2_inputs,
)

pytestmark = pytest.mark.xdist_group("serve-bad-input")

MODEL = "credit-risk"
V1 = PREDICT.format(name=MODEL)
V2 = f"/v2/models/{MODEL}/infer"
MLFLOW = "/invocations"
FEEDBACK = "/v1/feedback"
BODY_TIMEOUT_S = 4.0
MAX_JSON_DEPTH = 12
MAX_HEADER_BYTES = 8192
MAX_HEADER_COUNT = 40
RATE_PER_S = 5.0
BURST = 10
BIG = 200 * 1024 * 1024
CHUNK = 1024 * 1024
TOO_MANY_ROWS = 1_000_000


@dataclass(frozen=True)
class Served:
    project: Project
    server: Server
    rows: Rows
    throttled_key: str
    sentinel: str

    @property
    def client(self) -> httpx.Client:
        return self.server.client

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        if isinstance(body, bytes | str):
            kwargs["content"] = body
        elif body is not None:
            kwargs["json"] = body
        return self.client.post(path, **kwargs)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    project = make_project(tmp_path_factory.mktemp("bad-input"))
    limits = {
        "body_timeout_s": BODY_TIMEOUT_S,
        "max_json_depth": MAX_JSON_DEPTH,
        "max_header_bytes": MAX_HEADER_BYTES,
        "max_header_count": MAX_HEADER_COUNT,
    }
    rate_limit = {**TEST_SERVE["rate_limit"], "burst": BURST}
    project.set_spec(serve=dict(TEST_SERVE, limits=limits, rate_limit=rate_limit))
    _, throttled = api.create_key(
        ["predict", "read"], rate_per_s=RATE_PER_S, settings=project.settings
    )
    sentinel = f"sentinel-{uuid.uuid4().hex}"
    (project.root / "sentinel.txt").write_text(sentinel)
    server = start_server(project)
    try:
        yield Served(project, server, api.demo_request_rows(project.root, 5), throttled, sentinel)
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def server_unharmed(served: Served) -> Iterator[None]:
    """After every bad request, a good one is still answered."""
    yield
    response = served.post(V1, {"instances": served.rows})
    assert response.status_code == 200, response.text
    assert served.client.get("/readyz").json() == {"ready": True}


@pytest.fixture(scope="module")
def datatypes(served: Served) -> dict[str, str]:
    return v2_datatypes(served.client.get(f"/v2/models/{MODEL}").json())


def mlflow_code(body: dict[str, Any]) -> str:
    return str(body["error_code"])


# --- malformed bodies --------------------------------------------------------------------------


@pytest.mark.parametrize("path", [V1, V2, MLFLOW, "/v1/feedback"])
@pytest.mark.parametrize(
    "body", [b'{"instances": [', b"{'single': 'quotes'}", b"", b"\xff\xfe not utf-8"]
)
def test_malformed_json_is_400(served: Served, path: str, body: bytes) -> None:
    response = served.post(path, body, headers={"content-type": "application/json"})
    error = assert_json_error(response, 400)
    message = error_message(error)
    assert "JSON" in message, message
    if body:
        assert re.search(r"line \d+ column \d+", message), message


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        (V1, "text/plain"),
        (V1, "application/x-python-pickle"),
        (V1, "application/vnd.bentoml+pickle"),
        (V1, "application/x-www-form-urlencoded"),
        (V1, "multipart/form-data; boundary=x"),
        (V1, "application/json; charset=latin-1"),
        (MLFLOW, "text/plain"),
        (MLFLOW, "application/octet-stream"),
        (MLFLOW, "application/json; charset=latin-1"),
        (MLFLOW, "text/csv; charset=latin-1"),
    ],
)
def test_wrong_content_type_is_415(served: Served, path: str, content_type: str) -> None:
    body = orjson.dumps({"instances": served.rows})
    response = served.post(path, body, headers={"content-type": content_type})
    error = assert_json_error(response, 415)
    message = error_message(error)
    assert content_type.split(";")[0] in message or "charset" in message, message


@pytest.mark.parametrize("case", ["415", "413"])
def test_mlflow_client_errors_are_not_labelled_internal(served: Served, case: str) -> None:
    if case == "415":
        response = served.post(MLFLOW, b"{}", headers={"content-type": "text/plain"})
    else:
        response = served.post(MLFLOW, {"dataframe_records": [{}] * 10_001})
    body = assert_json_error(response, int(case))
    assert mlflow_code(body) != "INTERNAL_ERROR", body


# --- size ----------------------------------------------------------------------------------------


class BigBody:
    """200 MB of valid-looking JSON records, generated as it is sent; counts what was taken."""

    def __init__(self, row: dict[str, Any], total: int = BIG) -> None:
        piece = orjson.dumps(row) + b","
        self.block = piece * (CHUNK // len(piece))
        self.total = total
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        yield b'{"instances": ['
        while self.sent < self.total:
            self.sent += len(self.block)
            yield self.block
        yield b"{}]}"


@pytest.mark.parametrize("path", [V1, V2, MLFLOW])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_200_mb_body_is_413(served: Served, path: str, framing: str) -> None:
    body = BigBody(served.rows[0])
    headers = {"content-type": "application/json"}
    if framing == "content-length":
        headers["content-length"] = str(BIG + 19)
    try:
        response = served.client.post(path, content=iter(body), headers=headers)
    except httpx.TransportError as error:  # the server may close before the client sees it
        pytest.fail(f"no 413 answer, the connection broke instead: {error!r}")
    error = assert_json_error(response, 413)
    assert "serve.limits.max_body_bytes" in error_message(error)
    assert body.sent < BIG, "the server stopped reading long before 200 MB"


def test_a_gzip_bomb_is_413(served: Served) -> None:
    bomb = gzip.compress(b" " * (40 * CHUNK))
    assert len(bomb) < CHUNK
    response = served.post(V2, bomb, headers={"content-encoding": "gzip"})
    assert_json_error(response, 413)


def _too_many_rows(form: str) -> tuple[str, bytes, dict[str, str]]:
    json_type = {"content-type": "application/json"}
    n = TOO_MANY_ROWS
    if form == "v1-columns":
        return V1, b'{"columns": ["age"], "data": [' + b",".join([b"[30]"] * n) + b"]}", json_type
    if form == "v1-records":
        return V1, b'{"instances": [' + b",".join([b"{}"] * n) + b"]}", json_type
    if form == "v2-tensor":
        tensor = {"name": "age", "datatype": "INT64", "shape": [n], "data": [30] * n}
        return V2, orjson.dumps({"inputs": [tensor]}), json_type
    if form == "mlflow-split":
        split = {"columns": ["age"], "data": [[30]] * n}
        return MLFLOW, orjson.dumps({"dataframe_split": split}), json_type
    return MLFLOW, b"age\n" + b"30\n" * n, {"content-type": "text/csv"}


@pytest.mark.parametrize(
    "form", ["v1-columns", "v1-records", "v2-tensor", "mlflow-split", "mlflow-csv"]
)
def test_a_million_rows_is_413(served: Served, form: str) -> None:
    path, body, headers = _too_many_rows(form)
    assert len(body) < 16 * CHUNK, "under the byte cap: the row cap answers"
    response = served.post(path, body, headers=headers)
    error = assert_json_error(response, 413)
    message = error_message(error)
    assert "10000" in message and "atoll predict" in message, message


# --- shape ---------------------------------------------------------------------------------------


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (V1, b'{"instances": ' + _deep(100_000) + b"}"),
        (V1, b'{"columns": ["age"], "data": ' + _deep(100_000) + b"}"),
        (
            V2,
            b'{"inputs": [{"name": "age", "datatype": "INT64", "shape": [1], "data": '
            + _deep(100_000)
            + b"}]}",
        ),
        (MLFLOW, b'{"inputs": ' + _deep(100_000) + b"}"),
        (V1, b'{"instances": [' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"]}"),
    ],
    ids=["v1-records", "v1-columns", "v2", "mlflow", "v1-objects"],
)
def test_deeply_nested_arrays_are_400(served: Served, path: str, body: bytes) -> None:
    response = served.post(path, body, headers={"content-type": "application/json"})
    assert "serve.limits.max_json_depth" in error_message(assert_json_error(response, 400))


@pytest.mark.parametrize("path", [V2, MLFLOW, FEEDBACK])
def test_json_depth_is_the_configured_limit(
    served: Served, datatypes: dict[str, str], path: str
) -> None:
    """Parameters a protocol leaves free may nest to the limit (12 here), not one level more."""

    def body(depth: int) -> dict[str, Any]:
        fill: Any = 1
        for _ in range(depth - 2):  # the body object and its "parameters" object: 2 levels
            fill = [fill]
        if path == V2:
            return {"inputs": v2_inputs(served.rows, datatypes), "parameters": {"a": fill}}
        if path == MLFLOW:
            return {"dataframe_records": served.rows, "params": {"a": fill}}
        return {"feedback": [{"prediction_id": "p", "label": 1}], "parameters": {"a": fill}}

    assert served.post(path, body(MAX_JSON_DEPTH)).status_code == 200
    response = served.post(path, body(MAX_JSON_DEPTH + 1))
    message = error_message(assert_json_error(response, 400))
    assert f"deeper than {MAX_JSON_DEPTH} levels (serve.limits.max_json_depth)" in message


def test_a_nested_array_in_a_cell_is_400_naming_column_and_row(served: Served) -> None:
    rows = [dict(row) for row in served.rows]
    rows[2]["income"] = [[[[[1.0]]]]]
    response = served.post(V1, {"instances": rows})
    message = error_message(assert_json_error(response, 400))
    assert "income" in message and "row 2" in message, message


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
@pytest.mark.parametrize("path", [V1, V2, MLFLOW])
def test_nan_and_infinity_literals_are_400(served: Served, path: str, literal: bytes) -> None:
    if path == V2:
        tensor = b'{"name": "income", "datatype": "FP64", "shape": [1], "data": [%s]}' % literal
        body = b'{"inputs": [' + tensor + b"]}"
    elif path == MLFLOW:
        body = b'{"dataframe_records": [{"income": %s}]}' % literal
    else:
        body = b'{"instances": [{"income": %s}]}' % literal
    response = served.post(path, body, headers={"content-type": "application/json"})
    message = error_message(assert_json_error(response, 400))
    assert "JSON" in message, message


def _single_problem(body: dict[str, Any]) -> dict[str, Any]:
    problems = problems_of(body)
    assert len(problems) == 1, problems
    return problems[0]


@pytest.mark.parametrize(
    "form",
    [
        "v1-records",
        "v1-columns",
        "v2",
        "mlflow",
        "mlflow-csv",
    ],
)
def test_strings_in_numeric_columns_are_422_naming_column_and_row(
    served: Served, datatypes: dict[str, str], form: str
) -> None:
    rows = [dict(row) for row in served.rows]
    rows[3]["income"] = "a lot"
    if form == "v1-records":
        response = served.post(V1, {"instances": rows})
    elif form == "v1-columns":
        response = served.post(V1, columns_body(rows))
    elif form == "v2":
        inputs = v2_inputs([dict(row, income=None) for row in rows], datatypes)
        for tensor in inputs:  # an FP64 tensor with one string in it
            if tensor["name"] == "income":
                tensor["data"] = [row["income"] for row in rows]
        response = served.post(V2, {"inputs": inputs})
    elif form == "mlflow":
        response = served.post(MLFLOW, {"dataframe_records": rows})
    else:
        response = served.post(MLFLOW, csv_body(rows), headers={"content-type": "text/csv"})
    problem = _single_problem(assert_json_error(response, 422))
    assert (problem["rule"], problem["column"], problem["rows"]) == ("type", "income", [3]), problem


@pytest.mark.parametrize("value", ["NaN", "Infinity", "12abc", ""])
def test_numeric_looking_strings_are_422(served: Served, value: str) -> None:
    rows = [dict(row) for row in served.rows]
    rows[1]["loan_amount"] = value
    problem = _single_problem(assert_json_error(served.post(V1, {"instances": rows}), 422))
    assert (problem["column"], problem["rows"]) == ("loan_amount", [1]), problem


def test_a_missing_column_is_422_naming_it(served: Served) -> None:
    rows = [{k: v for k, v in row.items() if k != "credit_score"} for row in served.rows]
    for response in (
        served.post(V1, {"instances": rows}),
        served.post(MLFLOW, {"dataframe_records": rows}),
    ):
        problem = _single_problem(assert_json_error(response, 422))
        assert (problem["rule"], problem["column"]) == ("missing_column", "credit_score")


def test_a_missing_required_value_is_422_naming_its_row(served: Served) -> None:
    rows = [dict(row) for row in served.rows]
    del rows[4]["loan_amount"]  # non-nullable: absent in one record is a null in that row
    problem = _single_problem(assert_json_error(served.post(V1, {"instances": rows}), 422))
    assert (problem["column"], problem["rows"]) == ("loan_amount", [4]), problem


def test_an_extra_column_is_422_naming_it(served: Served, datatypes: dict[str, str]) -> None:
    rows = [dict(row, favourite_colour="teal") for row in served.rows]
    inputs = v2_inputs(rows, datatypes | {"favourite_colour": "BYTES"})
    for response in (
        served.post(V1, {"instances": rows}),
        served.post(V2, {"inputs": inputs}),
        served.post(MLFLOW, {"dataframe_records": rows}),
    ):
        problem = _single_problem(assert_json_error(response, 422))
        assert (problem["rule"], problem["column"]) == ("unexpected_column", "favourite_colour")


def test_an_unknown_category_is_422_naming_column_and_row(served: Served) -> None:
    rows = [dict(row) for row in served.rows]
    rows[2]["home_ownership"] = "castle"
    for response in (
        served.post(V1, {"instances": rows}),
        served.post(MLFLOW, {"dataframe_records": rows}),
    ):
        problem = _single_problem(assert_json_error(response, 422))
        assert (problem["rule"], problem["column"], problem["rows"]) == (
            "unknown_category",
            "home_ownership",
            [2],
        )


# --- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", "/v1/models/no-such-model/predict", {}),
        ("GET", "/v1/models/no-such-model", {}),
        ("POST", "/v2/models/no-such-model/infer", {}),
        ("GET", "/v2/models/no-such-model", {}),
        ("GET", "/v2/models/no-such-model/ready", {}),
        ("POST", "/invocations?model=no-such-model", {}),
        ("POST", "/invocations", {"X-Atoll-Model": "no-such-model"}),
    ],
)
def test_an_unknown_model_is_404(
    served: Served, method: str, path: str, headers: dict[str, str]
) -> None:
    body = {"instances": served.rows} if method == "POST" else None
    response = served.client.request(method, path, json=body, headers=headers)
    error = assert_json_error(response, 404)
    assert "no-such-model" in error_message(error)


TRAVERSALS = [
    ("POST", "/v1/models/../../sentinel.txt/predict", {}),
    ("POST", "/v1/models/..%2F..%2Fsentinel.txt/predict", {}),
    ("POST", "/v1/models/%2e%2e%2f%2e%2e%2fsentinel.txt/predict", {}),
    ("POST", "/v1/models/%252e%252e%252fsentinel.txt/predict", {}),
    ("POST", "/v1/models/..%5C..%5Csentinel.txt/predict", {}),
    ("POST", "/v1/models/%2e%2e/predict", {}),
    ("GET", "/v1/models/..%2F..%2Fsentinel.txt", {}),
    ("GET", "/v1/models/..", {}),
    ("POST", "/v2/models/..%2F..%2Fsentinel.txt/infer", {}),
    ("GET", "/v2/models/..%2F..%2Fsentinel.txt", {}),
    ("POST", "/invocations?model=../../sentinel.txt", {}),
    ("POST", "/invocations?model=..%2F..%2Fsentinel.txt", {}),
    ("POST", "/invocations", {"X-Atoll-Model": "../../sentinel.txt"}),
    ("GET", "/docs/static/..%2F..%2F..%2Fsentinel.txt", {}),
]


@pytest.mark.parametrize(("method", "path", "headers"), TRAVERSALS)
def test_a_model_name_with_dot_dot_is_404_and_reads_no_file(
    served: Served, method: str, path: str, headers: dict[str, str]
) -> None:
    """Sent byte for byte (no client-side path normalisation)."""
    body = orjson.dumps({"instances": served.rows}) if method == "POST" else None
    connection = http.client.HTTPConnection("127.0.0.1", served.server.port, timeout=30)
    try:
        connection.request(
            method,
            path,
            body=body,
            headers={
                "Authorization": f"Bearer {served.project.key}",
                "Content-Type": "application/json",
                **headers,
            },
        )
        raw = connection.getresponse()
        response = httpx.Response(raw.status, headers=raw.getheaders(), content=raw.read())
    finally:
        connection.close()
    assert_json_error(response, 404)
    assert served.sentinel not in response.text
    assert served.sentinel not in served.server.log()


# --- request heads -------------------------------------------------------------------------------


def raw_request(served: Served, head: bytes, chunk: int = 1 << 16) -> tuple[bytes, int]:
    """Send ``head`` in chunks on a fresh connection: what the server answered, and bytes sent.

    A server that closes while bytes it did not read are arriving resets the
    connection, which may discard its answer: callers of big sends check ``sent``.
    """
    sent = 0
    with socket.create_connection(("127.0.0.1", served.server.port), timeout=30) as sock:
        try:
            for start in range(0, len(head), chunk):
                sent += sock.send(head[start : start + chunk])
        except OSError:  # the server answered and closed before the rest was sent
            pass
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while part := sock.recv(65536):
                answer += part
    return answer, sent


def predict_head(served: Served, extra: list[tuple[str, str]]) -> bytes:
    body = orjson.dumps({"instances": served.rows[:1]})
    lines = [
        f"POST {V1} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Authorization: Bearer {served.project.key}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in extra),
    ]
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + body


def refusal(answer: bytes) -> str:
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 431 Request Header Fields Too Large", answer[:200]
    head, _, body = rest.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head
    error = orjson.loads(body)["error"]
    assert error["code"] == "header_too_large"
    return str(error["message"])


def test_a_request_head_under_the_limits_is_served(served: Served) -> None:
    fields = [(f"X-Pad-{i}", "v") for i in range(MAX_HEADER_COUNT - 8)]
    fields.append(("X-Big", "x" * (MAX_HEADER_BYTES - 1024)))
    answer, _ = raw_request(served, predict_head(served, fields))
    assert answer.startswith(b"HTTP/1.1 200 OK"), answer[:300]


def test_a_request_head_over_the_byte_limit_is_431(served: Served) -> None:
    answer, _ = raw_request(served, predict_head(served, [("X-Big", "x" * MAX_HEADER_BYTES)]))
    assert "over 8192 bytes (serve.limits.max_header_bytes)" in refusal(answer)


def test_too_many_header_fields_are_431(served: Served) -> None:
    fields = [(f"X-Pad-{i}", "v") for i in range(MAX_HEADER_COUNT)]
    answer, _ = raw_request(served, predict_head(served, fields))
    assert "over 40 header fields (serve.limits.max_header_count)" in refusal(answer)


def test_a_header_flood_is_cut_off_without_reading_it_all(served: Served) -> None:
    """50 MB of one header value: refused once the head passes the cap, not after 50 MB."""
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Flood: " + b"x" * (50 * 1024 * 1024)
    answer, sent = raw_request(served, head)
    assert sent < len(head) // 2, "the server kept reading the flood"
    if answer:  # else the reset of the unread bytes discarded it
        assert "serve.limits.max_header_bytes" in refusal(answer)


def chunked_predict(served: Served, trailers: bytes) -> bytes:
    """A predict request whose body comes as one chunk, then ``trailers`` after the last chunk."""
    body = orjson.dumps({"instances": served.rows[:1]})
    head = predict_head(served, [("Transfer-Encoding", "chunked")]).split(b"\r\n\r\n")[0]
    head = head.replace(f"Content-Length: {len(body)}\r\n".encode(), b"")
    return head + b"\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n" + trailers


def test_a_chunked_body_with_a_few_trailer_fields_is_served(served: Served) -> None:
    answer, _ = raw_request(served, chunked_predict(served, b"X-Checksum: abc\r\n\r\n"))
    assert answer.startswith(b"HTTP/1.1 200 OK"), answer[:300]


def test_too_many_trailer_fields_are_431(served: Served) -> None:
    trailers = b"".join(b"X-T-%d: v\r\n" % i for i in range(MAX_HEADER_COUNT + 1)) + b"\r\n"
    answer, _ = raw_request(served, chunked_predict(served, trailers))
    assert "over 40 trailer fields (serve.limits.max_header_count)" in refusal(answer)


def test_a_trailer_flood_is_cut_off_without_reading_it_all(served: Served) -> None:
    """50 MB of one trailer value, which httptools would buffer whole: refused at the cap."""
    request = chunked_predict(served, b"X-Flood: " + b"x" * (50 * 1024 * 1024))
    answer, sent = raw_request(served, request)
    assert sent < len(request) // 2, "the server kept reading the flood"
    if answer:  # else the reset of the unread bytes discarded it
        assert "trailer fields are over 8192 bytes" in refusal(answer)


# --- clients -------------------------------------------------------------------------------------


class SlowClient:
    """A raw connection that sends a predict request's body one byte at a time."""

    def __init__(self, served: Served) -> None:
        self.body = orjson.dumps({"instances": served.rows[:1]})
        self.sock = socket.create_connection(("127.0.0.1", served.server.port), timeout=60)
        head = (
            f"POST {V1} HTTP/1.1\r\nHost: 127.0.0.1:{served.server.port}\r\n"
            f"Authorization: Bearer {served.project.key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(self.body)}\r\n\r\n"
        )
        self.sock.sendall(head.encode())
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.trickling = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _trickle(self) -> None:
        for byte in self.body:
            if self.stop.is_set():
                return
            try:
                self.sock.sendall(bytes([byte]))
            except OSError:  # the server closed the connection
                return
            self.sent += 1
            if self.sent == 3:
                self.trickling.set()
            time.sleep(0.2)

    def answered(self) -> bool:
        readable, _, _ = select.select([self.sock], [], [], 0)
        return bool(readable)

    def read_answer(self) -> tuple[bytes, float]:
        """Everything the server sends until it closes; and when its first byte came."""
        chunks: list[bytes] = []
        first = 0.0
        while True:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            if not chunks:
                first = time.monotonic() - self.started
            chunks.append(chunk)
        return b"".join(chunks), first

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join(5)


def test_a_slow_client_is_timed_out_while_others_are_served(served: Served) -> None:
    slow = SlowClient(served)
    try:
        assert slow.trickling.wait(10)
        normal = served.post(V1, {"instances": served.rows})
        assert normal.status_code == 200, "another client is served while one trickles"
        assert not slow.answered(), "the trickling request is still open while the other is served"
        answer, first_byte_s = slow.read_answer()
    finally:
        slow.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b"application/json" in head.lower()
    error = orjson.loads(body)["error"]
    assert error["code"] == "request_timeout"
    assert "serve.limits.body_timeout_s" in error["message"]
    assert slow.sent < len(slow.body), "timed out before the body was complete"
    # A protocol deadline, not a speed claim: answered after the body timeout, well before the
    # trickle (0.2 s a byte) would have finished.
    assert first_byte_s + 0.5 >= BODY_TIMEOUT_S and first_byte_s < BODY_TIMEOUT_S + 20


def test_a_flood_beyond_the_rate_limit_is_429_with_retry_after(served: Served) -> None:
    headers = {"Authorization": f"Bearer {served.throttled_key}"}
    statuses: list[int] = []
    limited: httpx.Response | None = None
    with httpx.Client(base_url=served.server.url, headers=headers, timeout=30) as client:
        for _ in range(200):
            response = client.get("/v1/models")
            statuses.append(response.status_code)
            if response.status_code == 429:
                limited = response
                break
    assert limited is not None, f"no 429 in {len(statuses)} requests at > {RATE_PER_S}/s"
    assert set(statuses[:-1]) == {200} and len(statuses) > BURST // 2, statuses
    error = assert_json_error(limited, 429)
    assert error["error"]["code"] == "rate_limited"
    retry_after = limited.headers["retry-after"]
    assert retry_after.isdigit() and int(retry_after) >= 1
    assert served.client.get("/v1/models").status_code == 200, "other keys are unaffected"
