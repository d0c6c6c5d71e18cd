"""API keys against a real ``atoll serve``: 401 for every bad key, 403 for scope and model,
revocation and expiry seen by a running server, ``--no-auth`` only on loopback, and the
``atoll keys`` commands (the key printed once, never listed, never stored in clear).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from atoll import api
from atoll.cli.main import cli
from atoll.store.tables import api_keys
from tests.serve.running import Project, Server, free_port, make_project, start_server
from tests.serve.wire import PREDICT, assert_json_error, error_message

pytestmark = pytest.mark.xdist_group("serve-auth")

MODEL = "credit-risk"
V1 = PREDICT.format(name=MODEL)
V2 = f"/v2/models/{MODEL}/infer"
REVOCATION_DEADLINE_S = 5.0
KEY_PATTERN = re.compile(r"atoll_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
UNAUTHORIZED = "a valid API key is required"


@dataclass(frozen=True)
class Keys:
    predict: str
    read: str
    feedback: str
    own_model: str
    other_model: str
    to_revoke: str
    expired: str
    expired_at: datetime


@dataclass(frozen=True)
class Served:
    project: Project
    server: Server
    keys: Keys
    rows: list[dict[str, Any]]

    def client(self, key: str | None = None, *, header: str = "bearer") -> httpx.Client:
        headers = {}
        if key is not None:
            headers = (
                {"X-API-Key": key} if header == "x-api-key" else {"Authorization": f"Bearer {key}"}
            )
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=30)

    def call(self, key: str | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self.client(key) as client:
            return client.request(method, path, **kwargs)

    def bodies(self) -> dict[str, Any]:
        """A valid body for each POST route."""
        row = self.rows[0]
        inputs = [
            {"name": k, "datatype": "BYTES", "shape": [1], "data": [str(v)]} for k, v in row.items()
        ]
        numeric = {k: "FP64" for k, v in row.items() if isinstance(v, float)}
        numeric |= {k: "INT64" for k, v in row.items() if isinstance(v, int)}
        for tensor in inputs:
            if tensor["name"] in numeric:
                tensor["datatype"] = numeric[tensor["name"]]
                tensor["data"] = [row[tensor["name"]]]
        return {
            V1: {"instances": [row]},
            V2: {"inputs": inputs},
            "/invocations": {"dataframe_records": [row]},
            "/v1/feedback": {"feedback": [{"prediction_id": "p" * 36, "label": 1}]},
        }


def _key(project: Project, scopes: list[str], **kwargs: Any) -> str:
    _, plaintext = api.create_key(scopes, settings=project.settings, **kwargs)
    return plaintext


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    project = make_project(tmp_path_factory.mktemp("auth"))
    expired, expired_key = api.create_key(
        ["predict"], expires_in=timedelta(seconds=1), settings=project.settings
    )
    assert expired.expires_at is not None
    keys = Keys(
        predict=_key(project, ["predict"]),
        read=_key(project, ["read"]),
        feedback=_key(project, ["feedback"]),
        own_model=_key(project, ["predict", "read"], models=[MODEL]),
        other_model=_key(project, ["predict", "read"], models=["some-other-model"]),
        to_revoke=_key(project, ["predict"]),
        expired=expired_key,
        expired_at=expired.expires_at,
    )
    server = start_server(project)
    try:
        yield Served(project, server, keys, api.demo_request_rows(project.root, 2))
    finally:
        server.stop()


def _secret(key: str) -> str:
    return key.split("_", 2)[2]


# --- 401 -----------------------------------------------------------------------------------------

ROUTES = [
    ("POST", V1),
    ("POST", V2),
    ("POST", "/invocations"),
    ("GET", "/v1/models"),
    ("GET", "/metrics"),
]


def _bad_credentials(served: Served) -> dict[str, dict[str, str]]:
    admin = served.project.key
    key_id = admin.split("_")[1]
    wrong_secret = f"atoll_{key_id}_{'A' * 43}"
    return {
        "missing": {},
        "unknown key": {"Authorization": f"Bearer atoll_{'0' * 12}_{'B' * 43}"},
        "wrong secret": {"Authorization": f"Bearer {wrong_secret}"},
        "wrong secret in X-API-Key": {"X-API-Key": wrong_secret},
        "truncated": {"Authorization": f"Bearer {admin[:-1]}"},
        "malformed": {"Authorization": "Bearer atoll_xyz"},
        "not a key": {"Authorization": "Bearer hunter2"},
        "empty bearer": {"Authorization": "Bearer"},
        "basic scheme": {
            "Authorization": "Basic " + base64.b64encode(f"u:{admin}".encode()).decode()
        },
        "key without scheme": {"Authorization": admin},
    }


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_missing_wrong_and_malformed_keys_are_401_alike(
    served: Served, method: str, path: str
) -> None:
    body = served.bodies().get(path)
    messages = set()
    for name, headers in _bad_credentials(served).items():
        with httpx.Client(base_url=served.server.url, headers=headers, timeout=30) as client:
            response = client.request(method, path, json=body)
        error = assert_json_error(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer"), name
        messages.add(error_message(error))
    assert messages == {UNAUTHORIZED}, "every bad key gets the same answer"


def test_a_key_in_the_query_string_is_refused(served: Served) -> None:
    response = served.call(None, "GET", f"/v1/models?api_key={served.project.key}")
    assert_json_error(response, 401)


def test_an_expired_key_is_401(served: Served) -> None:
    wait = (served.keys.expired_at - datetime.now(UTC)).total_seconds()
    if wait > 0:
        time.sleep(wait + 0.1)
    bodies = served.bodies()
    for path in (V1, V2, "/invocations"):
        response = served.call(served.keys.expired, "POST", path, json=bodies[path])
        assert error_message(assert_json_error(response, 401)) == UNAUTHORIZED


def test_a_key_revoked_while_the_server_runs_is_refused_within_seconds(served: Served) -> None:
    key = served.keys.to_revoke
    body = served.bodies()[V1]
    assert served.call(key, "POST", V1, json=body).status_code == 200
    api.revoke_key(key.split("_")[1], settings=served.project.settings)
    deadline = time.monotonic() + REVOCATION_DEADLINE_S
    status = 200
    while time.monotonic() < deadline and status != 401:
        status = served.call(key, "POST", V1, json=body).status_code
        time.sleep(0.1)
    assert status == 401, f"still accepted {REVOCATION_DEADLINE_S} s after revocation"
    assert served.call(served.project.key, "POST", V1, json=body).status_code == 200


# --- headers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["bearer", "x-api-key"])
def test_bearer_and_x_api_key_both_carry_a_key(served: Served, header: str) -> None:
    with served.client(served.keys.predict, header=header) as client:
        response = client.post(V1, json=served.bodies()[V1])
    assert response.status_code == 200, response.text


def test_the_bearer_scheme_is_case_insensitive(served: Served) -> None:
    headers = {"Authorization": f"bearer {served.keys.predict}"}
    with httpx.Client(base_url=served.server.url, headers=headers, timeout=30) as client:
        assert client.post(V1, json=served.bodies()[V1]).status_code == 200


# --- 403 -----------------------------------------------------------------------------------------

READS = [
    ("GET", "/v1/models"),
    ("GET", f"/v1/models/{MODEL}"),
    ("GET", f"/v2/models/{MODEL}"),
    ("GET", f"/v2/models/{MODEL}/ready"),
    ("GET", "/metrics"),
]
PREDICTS = [("POST", V1), ("POST", V2), ("POST", "/invocations")]
FEEDBACK = [("POST", "/v1/feedback")]
MATRIX = {
    "predict": PREDICTS,
    "read": READS,
    "feedback": FEEDBACK,
}


@pytest.mark.parametrize("scope", sorted(MATRIX))
def test_each_scope_opens_its_routes_and_no_others(served: Served, scope: str) -> None:
    key = getattr(served.keys, scope)
    bodies = served.bodies()
    for granted, routes in MATRIX.items():
        for method, path in routes:
            response = served.call(key, method, path, json=bodies.get(path))
            if granted == scope:
                assert response.status_code == 200, (scope, path, response.text)
            else:
                assert_json_error(response, 403)


def test_an_admin_key_opens_every_route(served: Served) -> None:
    bodies = served.bodies()
    for routes in MATRIX.values():
        for method, path in routes:
            response = served.call(served.project.key, method, path, json=bodies.get(path))
            assert response.status_code == 200, (path, response.text)


@pytest.mark.parametrize(
    "path",
    [
        "/healthz",
        "/readyz",
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/ping",
        "/health",
        "/version",
        "/openapi.json",
        "/docs",
    ],
)
def test_probes_and_docs_need_no_key(served: Served, path: str) -> None:
    assert served.call(None, "GET", path).status_code == 200


def test_a_key_for_another_model_is_403(served: Served) -> None:
    bodies = served.bodies()
    for method, path in [*PREDICTS, ("GET", f"/v1/models/{MODEL}"), ("GET", f"/v2/models/{MODEL}")]:
        refused = served.call(served.keys.other_model, method, path, json=bodies.get(path))
        assert_json_error(refused, 403)
        allowed = served.call(served.keys.own_model, method, path, json=bodies.get(path))
        assert allowed.status_code == 200, (path, allowed.text)


def test_keys_never_reach_the_server_log(served: Served) -> None:
    served.call(served.project.key, "GET", f"/v1/models?api_key={served.project.key}")
    secrets = [_secret(served.project.key), *(_secret(k) for k in _plaintexts(served.keys))]
    log = served.server.log()
    assert not [s for s in secrets if s in log]


def _plaintexts(keys: Keys) -> list[str]:
    return [v for v in vars(keys).values() if isinstance(v, str)]


# --- serving without auth ------------------------------------------------------------------------


def test_no_auth_on_loopback_serves_without_a_key(served: Served) -> None:
    server = start_server(served.project, "--no-auth")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.post(V1, json=served.bodies()[V1]).status_code == 200
            assert client.get("/v1/models").status_code == 200
    finally:
        server.stop()


def test_no_auth_on_a_public_address_refuses_to_start(served: Served) -> None:
    port = free_port()
    command = [sys.executable, "-m", "atoll", "-C", str(served.project.root), "serve"]
    command += ["--no-auth", "--host", "0.0.0.0", "--port", str(port)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    assert "0.0.0.0" in done.stderr and "auth" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)


# --- atoll keys ----------------------------------------------------------------------------------


def atoll(project: Project, *args: str) -> Any:
    result = CliRunner().invoke(
        cli,
        ["-C", str(project.root), *args],
        env={
            "ATOLL_DB_URL": None,
            "ATOLL_ARTIFACT_ROOT": None,
            "ATOLL_PROJECT_DIR": None,
            "COLUMNS": "200",
        },
        prog_name="atoll",
    )
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def test_keys_create_list_revoke_through_the_cli(served: Served) -> None:
    project = served.project
    created = atoll(
        project, "keys", "create", "--scope", "predict", "--model", MODEL, "--expires", "30d"
    )
    printed = KEY_PATTERN.findall(created.stdout + created.stderr)
    assert len(printed) == 1, "the key is printed exactly once"
    [key] = printed
    key_id, secret = key.split("_")[1], _secret(key)
    assert key_id in created.stderr + created.stdout

    for listing in (atoll(project, "keys", "list"), atoll(project, "keys", "list", "--json")):
        assert secret not in listing.stdout + listing.stderr
        assert key_id[:8] in listing.stdout
    with api.open_registry(project.settings) as registry, registry.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(api_keys))]
    assert not [r for r in rows if secret in repr(r) or key in repr(r)], "never stored in clear"
    [stored] = [r for r in rows if r["key_id"] == key_id]
    assert (
        stored["digest"]
        == hashlib.sha256(bytes.fromhex(stored["salt"]) + secret.encode()).hexdigest()
    )
    assert stored["scopes"] == ["predict"] and stored["models"] == [MODEL]
    assert stored["expires_at"] is not None

    with served.client(key) as client:
        deadline = time.monotonic() + REVOCATION_DEADLINE_S
        while client.post(V1, json=served.bodies()[V1]).status_code != 200:
            assert time.monotonic() < deadline, "a new key reaches the server within seconds"
            time.sleep(0.1)
        assert_json_error(client.get("/v1/models"), 403)  # predict only

    revoked = atoll(project, "keys", "revoke", key_id, "--json")
    assert key_id in revoked.stdout and secret not in revoked.stdout
    listing = atoll(project, "keys", "list", "--json")
    assert '"revoked_at": null' not in _entry(listing.stdout, key_id)
    with served.client(key) as client:
        deadline = time.monotonic() + REVOCATION_DEADLINE_S
        while client.post(V1, json=served.bodies()[V1]).status_code != 401:
            assert time.monotonic() < deadline, "a revoked key is refused within seconds"
            time.sleep(0.1)


def _entry(listing: str, key_id: str) -> str:
    [entry] = [e for e in json.loads(listing) if e["key_id"] == key_id]
    assert entry["revoked_at"]
    return json.dumps(entry)
