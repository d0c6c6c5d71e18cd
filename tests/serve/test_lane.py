"""The direct path of predictions (atoll.serve.lane) against a real ``atoll serve``.

Each request is sent twice over raw sockets: as is, which the protocol answers
directly, and with a query string (ignored by the routes), which sends it
through the ASGI stack. The
two answers must be the same (status, headers in order, body), and
``atoll_http_direct_requests_total`` shows which path answered.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pytest

from atoll import api
from tests.serve import running
from tests.serve.running import TEST_SERVE, make_project, start_server
from tests.serve.wire import PREDICT, Rows, columns_body, v2_datatypes, v2_inputs

pytestmark = pytest.mark.xdist_group("serve-lane")

V1 = PREDICT.format(name="credit-risk")
V2 = "/v2/models/credit-risk/infer"
MLFLOW = "/invocations"
RATE_PER_S = 0.01
VOLATILE = {b"date", b"content-length"}  # a clock; a body with random prediction ids


@dataclass(frozen=True)
class Reply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        return next((v for n, v in self.headers if n == name), None)


@dataclass(frozen=True)
class Served(running.Served):
    throttled_key: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    project = make_project(tmp_path_factory.mktemp("lane"))
    rate_limit = {**TEST_SERVE["rate_limit"], "burst": 1}
    project.set_spec(serve=dict(TEST_SERVE, rate_limit=rate_limit))
    _, throttled = api.create_key(["predict"], rate_per_s=RATE_PER_S, settings=project.settings)
    server = start_server(project)
    try:
        yield Served(project, server, api.demo_request_rows(project.root, 3), throttled)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def datatypes(served: Served) -> dict[str, str]:
    return v2_datatypes(served.server.client.get("/v2/models/credit-risk").json())


def request(
    path: str,
    body: bytes,
    *,
    key: str | None,
    request_id: str,
    content_type: str = "application/json",
    extra: bytes = b"",
) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: test", f"Content-Type: {content_type}"]
    head += [f"Content-Length: {len(body)}", f"X-Request-ID: {request_id}"]
    if key:
        head.append(f"Authorization: Bearer {key}")
    return ("\r\n".join(head) + "\r\n").encode() + extra + b"\r\n" + body


def read_replies(sock: socket.socket, count: int) -> list[Reply]:
    """``count`` responses read off one connection, in the order they came."""
    buffer, replies = b"", []
    while len(replies) < count:
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            chunk = sock.recv(1 << 16)
            assert chunk, f"the connection closed after {len(replies)} of {count} responses"
            buffer += chunk
            continue
        lines = buffer[:end].split(b"\r\n")
        headers = [tuple(line.split(b": ", 1)) for line in lines[1:]]
        length = int(dict(headers)[b"content-length"])
        while len(buffer) < end + 4 + length:
            chunk = sock.recv(1 << 16)
            assert chunk, "the connection closed inside a body"
            buffer += chunk
        body = buffer[end + 4 : end + 4 + length]
        replies.append(Reply(int(lines[0].split()[1]), headers, body))  # type: ignore[arg-type]
        buffer = buffer[end + 4 + length :]
    return replies


def exchange(served: Served, data: bytes, count: int = 1, pause_after: int = 0) -> list[Reply]:
    with socket.create_connection(("127.0.0.1", served.server.port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if pause_after:
            sock.sendall(data[:pause_after])
            time.sleep(0.3)  # the server reads the first part alone
            data = data[pause_after:]
        sock.sendall(data)
        return read_replies(sock, count)


def direct_count(served: Served) -> float:
    text = served.server.client.get("/metrics").text
    found = re.search(r"^atoll_http_direct_requests_total (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


ROUTES = {"native": V1, "v2": V2, "mlflow": MLFLOW}


def payload(route: str, rows: Rows, datatypes: dict[str, str]) -> bytes:
    if route == "native":
        return orjson.dumps({"instances": rows})
    if route == "v2":
        return orjson.dumps({"inputs": v2_inputs(rows, datatypes)})
    return orjson.dumps({"dataframe_split": columns_body(rows)})


def without_ids(route: str, body: bytes) -> object:
    """The answer without its prediction ids (random per prediction), which must be there."""
    answer = orjson.loads(body)
    if route == "native":
        ids = [prediction.pop("id") for prediction in answer["predictions"]]
    elif route == "v2":
        [tensor] = [t for t in answer["outputs"] if t["name"] == "prediction_id"]
        ids = tensor.pop("data")
    else:
        ids = answer.pop("ids")
    assert len(ids) == len(set(ids)) > 0
    return answer


CASES = {
    "answered": ("rows", "application/json", "admin"),
    "malformed JSON": ("{", "application/json", "admin"),
    "schema violation": ("too young", "application/json", "admin"),
    "wrong content type": ("rows", "application/x-unknown", "admin"),
    "no key": ("rows", "application/json", None),
    "rate limited": ("rows", "application/json", "throttled"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
@pytest.mark.parametrize("route", ROUTES, ids=list(ROUTES))
def test_the_direct_path_answers_as_the_asgi_path_does(
    served: Served, datatypes: dict[str, str], route: str, case: str
) -> None:
    shape, kind, who = CASES[case]
    rows = [dict(row) for row in served.rows]
    if shape == "too young":
        rows[1]["age"] = 5  # the schema's minimum is 18
    body = payload(route, rows, datatypes) if shape != "{" else b'{"inputs": ['
    key = {"admin": served.project.key, "throttled": served.throttled_key, None: None}[who]
    path = ROUTES[route]
    if who == "throttled":  # its one-request burst is spent: both paths must refuse
        exchange(served, request(path, body, key=key, request_id="spend-the-burst"))
    rid = f"{route}-{case.replace(' ', '-')}"
    before = direct_count(served)
    [direct] = exchange(served, request(path, body, key=key, request_id=rid, content_type=kind))
    after = direct_count(served)
    asgi_path = path + ("?model=credit-risk" if route == "mlflow" else "?path=asgi")
    [asgi] = exchange(served, request(asgi_path, body, key=key, request_id=rid, content_type=kind))
    assert after == before + 1 and direct_count(served) == after  # which path answered
    expected = {"answered": 200, "no key": 401, "rate limited": 429}.get(case)
    if route == "v2" and case == "wrong content type":
        expected = 200  # V2 clients send any Content-Type, or none
    assert direct.status == asgi.status
    assert direct.status == expected if expected else direct.status in (400, 415, 422)
    assert [n for n, _ in direct.headers] == [n for n, _ in asgi.headers]
    assert [h for h in direct.headers if h[0] not in VOLATILE] == [
        h for h in asgi.headers if h[0] not in VOLATILE
    ]
    if direct.status == 200:
        assert without_ids(route, direct.body) == without_ids(route, asgi.body)
    else:
        assert direct.body == asgi.body


def test_a_body_that_needs_a_second_read_takes_the_asgi_path(served: Served) -> None:
    body = orjson.dumps({"instances": served.rows})
    data = request(V1, body, key=served.project.key, request_id="split-body")
    before = direct_count(served)
    [reply] = exchange(served, data, pause_after=len(data) - 10)
    assert reply.status == 200 and reply.header(b"x-request-id") == b"split-body"
    assert len(orjson.loads(reply.body)["predictions"]) == len(served.rows)
    assert direct_count(served) == before


def test_pipelined_requests_are_answered_in_order(served: Served) -> None:
    body = orjson.dumps({"instances": served.rows})
    key = served.project.key
    data = request(V1, body, key=key, request_id="first")
    data += b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Request-ID: second\r\n\r\n"
    data += request(V1, body, key=key, request_id="third")
    data += request(V1, b"{", key=key, request_id="fourth")
    replies = exchange(served, data, count=4)
    assert [r.header(b"x-request-id") for r in replies] == [
        b"first",
        b"second",
        b"third",
        b"fourth",
    ]
    assert [r.status for r in replies] == [200, 200, 200, 400]


def test_a_client_that_asks_to_close_gets_its_answer_then_the_end(served: Served) -> None:
    body = orjson.dumps({"instances": served.rows})
    data = request(
        V1, body, key=served.project.key, request_id="bye", extra=b"Connection: close\r\n"
    )
    with socket.create_connection(("127.0.0.1", served.server.port), timeout=30) as sock:
        sock.sendall(data)
        [reply] = read_replies(sock, 1)
        assert reply.status == 200 and reply.header(b"connection") == b"close"
        assert sock.recv(1) == b""  # closed after the answer
