"""Every route and wire format of a real ``atoll serve`` over a real socket.

One server per store backend serves two models: the demo ``credit-risk``
(category features) and ``numeric-risk`` (the same data with numeric features
only), which can take a single 2-D V2 tensor.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
import yaml
from playwright.sync_api import sync_playwright

import atoll
from atoll import api
from atoll.model.predictor import Predictor
from atoll.store.predlog import LogRecord, read_log
from atoll.store.tables import feedback
from tests.browser import chromium
from tests.conftest import POSTGRES_ENV, postgres_database
from tests.serve.running import Project, Server, make_project, start_server
from tests.serve.wire import (
    PREDICT,
    SECURITY_HEADERS,
    Rows,
    arrow_stream,
    assert_json_error,
    columns_body,
    columns_of,
    csv_body,
    error_message,
    native_answers,
    problems_of,
    v2_answers,
    v2_binary,
    v2_datatypes,
    v2_inputs,
    v2_outputs,
)

pytestmark = pytest.mark.xdist_group("serve-routes")

MODEL = "credit-risk"
NUMERIC = "numeric-risk"
CATEGORIES = ("home_ownership", "purpose", "term_months")
LOG_WAIT_S = 15.0


@dataclass(frozen=True)
class Served:
    project: Project
    server: Server
    read_key: str
    predict_key: str
    rows: Rows

    @property
    def client(self) -> httpx.Client:
        return self.server.client

    def bare(self, **headers: str) -> httpx.Client:
        """A client without the admin key."""
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=30)


def _add_numeric_model(project: Project) -> None:
    """Register ``numeric-risk``: the demo data with its category columns ignored."""
    spec = yaml.safe_load((project.root / "atoll.yaml").read_text())
    spec["name"] = NUMERIC
    for name in CATEGORIES:
        spec["columns"][name]["role"] = "ignore"
    spec["features"] = [step for step in spec["features"] if step["step"] != "onehot"]
    path = project.root / "numeric.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    outcome = api.train(path, settings=project.settings)
    api.promote(f"{NUMERIC}@{outcome.version.version}", settings=project.settings)


BACKENDS = ["sqlite", "postgres"] if os.environ.get(POSTGRES_ENV) else ["sqlite"]
"""PostgreSQL runs when configured; ``test_postgres_is_covered`` shows the skip otherwise."""


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    with contextlib.ExitStack() as stack:
        db_url = stack.enter_context(postgres_database()) if request.param == "postgres" else None
        project = make_project(tmp_path_factory.mktemp(f"routes-{request.param}"), db_url=db_url)
        _add_numeric_model(project)
        _, read_key = api.create_key(["read"], settings=project.settings)
        _, predict_key = api.create_key(["predict"], settings=project.settings)
        server = start_server(project)
        stack.callback(server.stop)
        rows = api.demo_request_rows(project.root, 8)
        yield Served(project, server, read_key, predict_key, rows)


@pytest.fixture(scope="module")
def predictors(served: Served) -> dict[str, Predictor]:
    settings = served.project.settings
    return {name: atoll.load(f"{name}@production", settings=settings) for name in (MODEL, NUMERIC)}


def test_postgres_is_covered() -> None:
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"{POSTGRES_ENV} is not set: these routes ran on SQLite only")


def complete(rows: Rows, names: list[str]) -> Rows:
    """Rows with a value in every one of ``names`` (binary tensors cannot carry nulls)."""
    return [row for row in rows if all(row.get(n) is not None for n in names)]


def predict(served: Served, body: Any, model: str = MODEL, **kwargs: Any) -> httpx.Response:
    if isinstance(body, bytes | str):
        kwargs["content"] = body
    else:
        kwargs["json"] = body
    return served.client.post(PREDICT.format(name=model), **kwargs)


# --- probes ---


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/healthz", {"live": True}),
        ("/v2/health/live", {"live": True}),
        ("/readyz", {"ready": True}),
        ("/v2/health/ready", {"ready": True}),
    ],
)
def test_probes_answer_without_a_key(served: Served, path: str, body: dict[str, Any]) -> None:
    with served.bare() as client:
        response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == body


# --- /v1 ---


def test_v1_lists_the_served_models(served: Served) -> None:
    response = served.client.get("/v1/models")
    assert response.status_code == 200
    models = {m["name"]: m for m in response.json()["models"]}
    assert set(models) == {MODEL, NUMERIC}
    for model in models.values():
        assert (model["version"], model["task"], model["ready"]) == (1, "binary", True)


def test_v1_model_metadata_carries_the_input_schema(
    served: Served, predictors: dict[str, Predictor]
) -> None:
    response = served.client.get(f"/v1/models/{MODEL}")
    assert response.status_code == 200
    body = response.json()
    schema = predictors[MODEL].schema
    assert (body["name"], body["version"], body["task"]) == (MODEL, 1, "binary")
    assert body["classes"] == [0, 1]
    assert body["input_schema"] == schema.json_schema()
    assert set(body["input_schema"]["required"]) == set(schema.features)
    assert body["input_schema"]["additionalProperties"] is False


def test_v1_predict_answers_records_columns_and_arrow_alike(served: Served) -> None:
    rows = served.rows
    by_records = predict(served, {"instances": rows})
    by_columns = predict(served, columns_body(rows))
    by_arrow = predict(
        served,
        arrow_stream(rows),
        headers={"content-type": "application/vnd.apache.arrow.stream"},
    )
    answers = []
    for response in (by_records, by_columns, by_arrow):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert (body["model"], body["version"]) == (MODEL, 1)
        assert len(body["predictions"]) == len(rows)
        ids = [p["id"] for p in body["predictions"]]
        assert len(set(ids)) == len(rows) and all(len(i) == 36 for i in ids)
        for p in body["predictions"]:
            assert set(p["probabilities"]) == {"0", "1"}
            assert abs(sum(p["probabilities"].values()) - 1.0) < 1e-9
            assert p["prediction"] in (0, 1)
        answers.append(native_answers(body))
    assert answers[0] == answers[1] == answers[2]


def test_v1_predict_with_rows_missing_optional_columns(served: Served) -> None:
    """Id, PII and time columns are optional inputs: the features alone are enough."""
    schema_features = served.client.get(f"/v1/models/{MODEL}").json()["input_schema"]["required"]
    slim = [{k: row[k] for k in schema_features} for row in served.rows]
    full = predict(served, {"instances": served.rows})
    response = predict(served, {"instances": slim})
    assert response.status_code == 200, response.text
    assert native_answers(response.json()) == native_answers(full.json())


def _wait_for_log(served: Served, ids: list[str]) -> dict[str, LogRecord]:
    deadline = time.monotonic() + LOG_WAIT_S
    with api.open_registry(served.project.settings) as registry:
        while True:
            found = {r.prediction_id: r for r in read_log(registry.engine, model=MODEL, limit=500)}
            if all(i in found for i in ids) or time.monotonic() > deadline:
                return {i: found[i] for i in ids if i in found}
            time.sleep(0.1)


def test_v1_predictions_are_logged_and_feedback_is_stored(served: Served) -> None:
    rows = served.rows[:3]
    response = predict(served, {"instances": rows})
    assert response.status_code == 200, response.text
    ids = [p["id"] for p in response.json()["predictions"]]
    admin_key_id = served.project.key.split("_")[1]

    logged = _wait_for_log(served, ids)
    assert set(logged) == set(ids), "every prediction reaches the log"
    for row, pid in zip(rows, ids, strict=True):
        record = logged[pid]
        assert (record.model, record.version, record.role) == (MODEL, 1, "primary")
        assert record.request_id == response.headers["x-request-id"]
        assert record.key_id == admin_key_id
        assert record.inputs["age"] == row["age"]
        assert record.inputs.get("email") != row["email"], "PII never reaches the log in clear"

    stored = served.client.post(
        "/v1/feedback",
        json={
            "feedback": [
                {"prediction_id": ids[0], "label": 1},
                {"prediction_id": ids[1], "label": 0},
            ]
        },
    )
    assert stored.status_code == 200, stored.text
    assert stored.json() == {"stored": 2}
    with api.open_registry(served.project.settings) as registry, registry.engine.connect() as conn:
        query = sa.select(feedback).where(feedback.c.prediction_id.in_(ids))
        labels = {row.prediction_id: row for row in conn.execute(query)}
    assert set(labels) == {ids[0], ids[1]}
    assert (labels[ids[0]].label, labels[ids[1]].label) == ("1", "0")
    assert labels[ids[0]].key_id == admin_key_id


def test_v1_feedback_refuses_a_body_without_feedback(served: Served) -> None:
    response = served.client.post("/v1/feedback", json={"labels": []})
    body = assert_json_error(response, 400)
    assert "feedback" in error_message(body)


# --- /v2 ---


def test_v2_server_metadata(served: Served) -> None:
    response = served.client.get("/v2")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "atoll"
    assert body["version"] == atoll.__version__
    assert isinstance(body["extensions"], list)


@pytest.mark.parametrize("path", [f"/v2/models/{MODEL}", f"/v2/models/{MODEL}/versions/1"])
def test_v2_model_metadata(served: Served, predictors: dict[str, Predictor], path: str) -> None:
    response = served.client.get(path)
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == MODEL
    assert body["platform"]
    assert body["versions"] == ["1"]
    assert [t["name"] for t in body["inputs"]] == predictors[MODEL].schema.inputs
    assert all(t["datatype"] in {"FP64", "INT64", "BOOL", "BYTES"} for t in body["inputs"])
    outputs = {t["name"]: t for t in body["outputs"]}
    assert set(outputs) == {"predict", "predict_proba", "prediction_id"}
    assert outputs["predict_proba"]["parameters"]["classes"] == [0, 1]


@pytest.mark.parametrize(
    "path", [f"/v2/models/{MODEL}/ready", f"/v2/models/{MODEL}/versions/1/ready"]
)
def test_v2_model_ready(served: Served, path: str) -> None:
    response = served.client.get(path)
    assert response.status_code == 200
    assert response.json() == {"name": MODEL, "ready": True}


def _datatypes(served: Served, model: str = MODEL) -> dict[str, str]:
    return v2_datatypes(served.client.get(f"/v2/models/{model}").json())


@pytest.mark.parametrize(
    "path", [f"/v2/models/{MODEL}/infer", f"/v2/models/{MODEL}/versions/1/infer"]
)
def test_v2_infer_with_one_tensor_per_column(served: Served, path: str) -> None:
    rows = served.rows
    inputs = v2_inputs(rows, _datatypes(served))
    response = served.client.post(
        path, json={"id": "req-42", "model_name": MODEL, "inputs": inputs}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert (body["model_name"], body["model_version"], body["id"]) == (MODEL, "1", "req-42")
    outputs = v2_outputs(body)
    assert outputs["predict"]["shape"] == [len(rows)]
    assert outputs["predict_proba"]["shape"] == [len(rows), 2]
    assert outputs["prediction_id"]["datatype"] == "BYTES"
    assert len(set(outputs["prediction_id"]["data"])) == len(rows)
    v1 = predict(served, {"instances": rows}).json()
    assert v2_answers(body) == native_answers(v1)


def test_v2_infer_without_a_content_type(served: Served) -> None:
    """tritonclient sends JSON with no Content-Type at all."""
    inputs = v2_inputs(served.rows, _datatypes(served))
    response = served.client.post(
        f"/v2/models/{MODEL}/infer", content=orjson.dumps({"inputs": inputs})
    )
    assert response.status_code == 200, response.text


def test_v2_infer_with_one_2d_fp64_tensor_in_feature_order(
    served: Served, predictors: dict[str, Predictor]
) -> None:
    features = predictors[NUMERIC].schema.features
    rows = complete(served.rows, features)
    matrix = [[float(row[f]) for f in features] for row in rows]
    tensor = {"name": "input-0", "datatype": "FP64", "shape": [len(rows), len(features)]}
    nested = served.client.post(
        f"/v2/models/{NUMERIC}/infer", json={"inputs": [tensor | {"data": matrix}]}
    )
    flat = served.client.post(
        f"/v2/models/{NUMERIC}/infer",
        json={"inputs": [tensor | {"data": [v for row in matrix for v in row]}]},
    )
    per_column = served.client.post(
        f"/v2/models/{NUMERIC}/infer",
        json={
            "inputs": v2_inputs(
                [{f: r[f] for f in features} for r in rows], _datatypes(served, NUMERIC)
            )
        },
    )
    for response in (nested, flat, per_column):
        assert response.status_code == 200, response.text
    assert v2_answers(nested.json()) == v2_answers(flat.json()) == v2_answers(per_column.json())
    direct = predictors[NUMERIC].predict(rows)
    assert [label for label, _ in v2_answers(nested.json())] == direct.predictions.tolist()


def test_v2_a_2d_tensor_for_a_model_with_categories_is_a_clear_422(
    served: Served, predictors: dict[str, Predictor]
) -> None:
    features = predictors[MODEL].schema.features
    tensor = {
        "name": "input-0",
        "datatype": "FP64",
        "shape": [1, len(features)],
        "data": [[1.0] * len(features)],
    }
    response = served.client.post(f"/v2/models/{MODEL}/infer", json={"inputs": [tensor]})
    body = assert_json_error(response, 422)
    assert isinstance(body["error"], str)
    flagged = {p["column"] for p in problems_of(body)}
    assert "home_ownership" in flagged, body


def test_v2_binary_tensors_answer_as_json_does(
    served: Served, predictors: dict[str, Predictor]
) -> None:
    rows = complete(served.rows, list(served.rows[0]))
    inputs = v2_inputs(rows, _datatypes(served))
    body, headers = v2_binary(inputs, request_id="bin-1")
    binary = served.client.post(f"/v2/models/{MODEL}/infer", content=body, headers=headers)
    as_json = served.client.post(f"/v2/models/{MODEL}/infer", json={"inputs": inputs})
    assert binary.status_code == 200, binary.text
    assert binary.json()["id"] == "bin-1"
    assert v2_answers(binary.json()) == v2_answers(as_json.json())

    features = predictors[NUMERIC].schema.features
    matrix = [
        {
            "name": "x",
            "datatype": "FP64",
            "shape": [len(rows), len(features)],
            "data": [[float(r[f]) for f in features] for r in rows],
        }
    ]
    body, headers = v2_binary(matrix)
    binary_2d = served.client.post(
        f"/v2/models/{NUMERIC}/infer",
        content=body,
        headers=headers | {"content-type": "application/octet-stream"},
    )
    json_2d = served.client.post(f"/v2/models/{NUMERIC}/infer", json={"inputs": matrix})
    assert binary_2d.status_code == 200, binary_2d.text
    assert v2_answers(binary_2d.json()) == v2_answers(json_2d.json())


def test_v2_gzip_bodies(served: Served) -> None:
    rows = complete(served.rows, list(served.rows[0]))
    inputs = v2_inputs(rows, _datatypes(served))
    plain = served.client.post(f"/v2/models/{MODEL}/infer", json={"inputs": inputs})
    zipped_json = served.client.post(
        f"/v2/models/{MODEL}/infer",
        content=gzip.compress(orjson.dumps({"inputs": inputs})),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    body, headers = v2_binary(inputs)
    zipped_binary = served.client.post(
        f"/v2/models/{MODEL}/infer",
        content=gzip.compress(body),
        headers=headers | {"content-encoding": "gzip"},
    )
    for response in (zipped_json, zipped_binary):
        assert response.status_code == 200, response.text
        assert v2_answers(response.json()) == v2_answers(plain.json())


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/v2/models/no-such-model", None, 404),
        ("GET", f"/v2/models/{MODEL}/versions/99", None, 404),
        ("POST", "/v2/models/no-such-model/infer", {"inputs": []}, 404),
        ("POST", f"/v2/models/{MODEL}/infer", b"{not json", 400),
        ("POST", f"/v2/models/{MODEL}/infer", {"inputs": []}, 400),
        (
            "POST",
            f"/v2/models/{MODEL}/infer",
            {"inputs": [{"name": "age", "datatype": "BYTES", "shape": [1], "data": ["old"]}]},
            422,
        ),
    ],
)
def test_v2_errors_are_error_strings_in_application_json(
    served: Served, method: str, path: str, body: Any, status: int
) -> None:
    content = body if isinstance(body, bytes) else None
    payload = None if isinstance(body, bytes) else body
    response = served.client.request(method, path, json=payload, content=content)
    parsed = assert_json_error(response, status)
    assert isinstance(parsed["error"], str) and parsed["error"]


# --- MLflow ---


@pytest.mark.parametrize("path", ["/ping", "/health"])
def test_mlflow_ping_and_health(served: Served, path: str) -> None:
    with served.bare() as client:
        response = client.get(path)
    assert response.status_code == 200
    assert response.text == "\n"


def test_mlflow_version(served: Served) -> None:
    with served.bare() as client:
        response = client.get("/version")
    assert response.status_code == 200
    assert response.text.strip() == atoll.__version__


def _mlflow_bodies(rows: Rows, features: list[str]) -> dict[str, dict[str, Any]]:
    columns = columns_of(rows)
    split = columns_body(rows)
    return {
        "dataframe_split": {"dataframe_split": {"index": list(range(len(rows))), **split}},
        "dataframe_records": {"dataframe_records": rows},
        "instances-records": {"instances": rows},
        "inputs-records": {"inputs": rows},
        "inputs-columns": {"inputs": columns},
        "inputs-lists": {"inputs": [[row[f] for f in features] for row in rows]},
    }


def test_mlflow_invocations_in_every_json_and_csv_form(
    served: Served, predictors: dict[str, Predictor]
) -> None:
    rows = served.rows
    expected = predictors[MODEL].predict(rows).predictions.tolist()
    bodies = _mlflow_bodies(rows, predictors[MODEL].schema.features)
    url = f"/invocations?model={MODEL}"
    answers: dict[str, httpx.Response] = {
        name: served.client.post(url, json=body) for name, body in bodies.items()
    }
    for content_type in ("text/csv", "application/csv", "text/csv; charset=utf-8"):
        answers[content_type] = served.client.post(
            url, content=csv_body(rows), headers={"content-type": content_type}
        )
    for name, response in answers.items():
        assert response.status_code == 200, (name, response.text)
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert body["predictions"] == expected, name
        assert len(set(body["ids"])) == len(rows)


def test_mlflow_invocations_names_the_model_by_query_or_header(served: Served) -> None:
    body = {"dataframe_records": served.rows[:2]}
    by_header = served.client.post("/invocations", json=body, headers={"X-Atoll-Model": NUMERIC})
    by_query = served.client.post(f"/invocations?model={NUMERIC}", json=body)
    assert by_header.status_code == by_query.status_code == 200
    assert by_header.json()["predictions"] == by_query.json()["predictions"]

    unnamed = served.client.post("/invocations", json=body)
    error = assert_json_error(unnamed, 400)
    assert error["error_code"] == "BAD_REQUEST"
    assert "?model=" in error["message"]


def test_mlflow_errors_carry_error_code_and_message(served: Served) -> None:
    bad = [dict(served.rows[0], income="plenty")]
    response = served.client.post(f"/invocations?model={MODEL}", json={"dataframe_records": bad})
    body = assert_json_error(response, 422)
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    [problem] = problems_of(body)
    assert (problem["column"], problem["rows"]) == ("income", [0])


# --- /metrics, /openapi.json, /docs ---


def _samples(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_metrics_need_a_read_key_and_use_atoll_names_and_route_templates(served: Served) -> None:
    assert predict(served, {"instances": served.rows[:1]}).status_code == 200
    with served.bare() as client:
        assert client.get("/metrics").status_code == 401
    with served.bare(authorization=f"Bearer {served.predict_key}") as client:
        assert client.get("/metrics").status_code == 403
    with served.bare(authorization=f"Bearer {served.read_key}") as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    assert samples and all(line.startswith("atoll_") for line in samples), samples[:5]
    requests = [s for s in samples if s.startswith("atoll_http_requests_total{")]
    routes = {m.group(1) for s in requests if (m := re.search(r'route="([^"]*)"', s))}
    assert "/v1/models/{name}/predict" in routes
    assert not any(MODEL in route for route in routes), routes
    assert any(
        s.startswith("atoll_predictions_total{") and f'model="{MODEL}"' in s for s in samples
    )
    assert any(s.startswith("atoll_build_info{") for s in samples)


def _metric(served: Served, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` that carry every one of ``labels``."""
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    total = 0.0
    for sample in _samples(served.client.get("/metrics").text):
        head, _, value = sample.rpartition(" ")
        if head.startswith(name + "{") and all(w in head for w in wanted):
            total += float(value)
    return total


def test_metrics_count_log_records_written(served: Served) -> None:
    response = predict(served, {"instances": served.rows})
    ids = [p["id"] for p in response.json()["predictions"]]
    assert len(_wait_for_log(served, ids)) == len(ids)
    deadline = time.monotonic() + LOG_WAIT_S
    written = 0.0
    while time.monotonic() < deadline:
        written = _metric(served, "atoll_prediction_log_records_total", outcome="written")
        if written >= len(ids):
            break
        time.sleep(0.2)
    assert written >= len(ids)


def test_metrics_count_prediction_errors(served: Served) -> None:
    bad = [dict(served.rows[0], income="plenty")]
    assert predict(served, {"instances": bad}).status_code == 422
    errors = _metric(served, "atoll_prediction_errors_total", model=MODEL, code="schema_violation")
    assert errors >= 1


def test_metrics_show_queue_depth(served: Served) -> None:
    assert predict(served, {"instances": served.rows[:1]}).status_code == 200
    samples = _samples(served.client.get("/metrics").text)
    assert any(s.startswith("atoll_queue_depth{") and f'model="{MODEL}"' in s for s in samples)


def test_metrics_count_a_too_large_body_under_its_route(served: Served) -> None:
    route = "/v1/models/{name}/predict"
    before = _metric(served, "atoll_http_requests_total", route=route, code="413")
    too_big = b" " * (16 * 1024 * 1024 + 1)
    response = predict(served, too_big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert _metric(served, "atoll_http_requests_total", route=route, code="413") == before + 1


def test_openapi_document_is_served_without_a_key(served: Served) -> None:
    with served.bare() as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    assert "/invocations" in paths and "/v1/models/{name}" in paths, sorted(paths)
    for model in (MODEL, NUMERIC):  # with several models, one literal path per model
        assert f"/v1/models/{model}/predict" in paths, sorted(paths)
        assert f"/v2/models/{model}/infer" in paths, sorted(paths)
        properties = paths[f"/v1/models/{model}/predict"]["post"]["requestBody"]
        assert "age" in str(properties)


def test_docs_page_and_its_assets_are_served_locally(served: Served) -> None:
    with served.bare() as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assets = sorted(set(re.findall(r'(?:src|href)="(/docs/static/[^"?]+)', page.text)))
        assert assets, page.text[:500]
        assert "http://" not in page.text and "https://" not in page.text, "no CDN"
        for asset in assets:
            response = client.get(asset)
            assert response.status_code == 200, asset
            assert response.content, asset
        assert client.get("/docs/static/..%2F..%2Fatoll.yaml").status_code == 404


def test_the_docs_page_draws_every_route_in_a_browser_under_its_csp(served: Served) -> None:
    """Swagger UI, as shipped with atoll, runs under the server's own security headers."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium())
        try:
            page = browser.new_page()
            errors: list[str] = []
            hosts: set[str] = set()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: hosts.add(r.url.split("/")[2]))
            page.goto(f"{served.server.url}/docs")
            page.wait_for_selector(f'[data-path="/v1/models/{MODEL}/predict"]', timeout=30_000)
            assert page.locator(".opblock").count() >= 10
            assert page.locator(".information-container .title").inner_text().startswith("atoll")
        finally:
            browser.close()
    assert errors == []  # a CSP violation or a script error is reported here
    assert hosts == {served.server.url.split("/")[2]}  # nothing fetched from another host


# --- headers ---


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz"),
        ("GET", "/v1/models"),
        ("POST", f"/v1/models/{MODEL}/predict"),
        ("GET", "/v1/models/no-such-model"),
        ("GET", "/v2"),
        ("GET", "/no/such/route"),
        ("GET", "/openapi.json"),
    ],
)
def test_every_response_has_a_request_id_and_security_headers(
    served: Served, method: str, path: str
) -> None:
    body = {"instances": served.rows[:1]} if method == "POST" else None
    response = served.client.request(method, path, json=body)
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", response.headers["x-request-id"])
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, (name, response.headers)
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert response.headers["cache-control"] == "no-store"
    assert "access-control-allow-origin" not in response.headers, "CORS is off by default"


def test_request_ids_are_echoed_when_safe_and_replaced_otherwise(served: Served) -> None:
    echoed = served.client.get("/healthz", headers={"X-Request-ID": "client-req.7"})
    assert echoed.headers["x-request-id"] == "client-req.7"
    replaced = served.client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert replaced.headers["x-request-id"] != "bad id\twith spaces"
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", replaced.headers["x-request-id"])
    first = served.client.get("/healthz").headers["x-request-id"]
    second = served.client.get("/healthz").headers["x-request-id"]
    assert first != second


def test_error_bodies_name_the_request_id(served: Served) -> None:
    response = served.client.get("/v1/models/no-such-model", headers={"X-Request-ID": "trace-1"})
    body = assert_json_error(response, 404)
    assert body["error"]["request_id"] == "trace-1"
    assert "no-such-model" in error_message(body)
