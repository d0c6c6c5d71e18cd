"""The OpenAPI document and the docs page: a valid 3.1 contract the validator honours.

The body schemas are checked against the real validator both ways: values a
column schema allows are accepted by ``Schema.validate``, values it forbids
are refused, and whole bodies generated from the document by schemathesis
(the tool the server's property-based test runs) pass validation.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import jsonschema
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate as validate_openapi
from schemathesis.generation.modes import GenerationMode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from atoll.schema import Column, Schema
from atoll.serve.codecs import Decoded, decode_mlflow, decode_native, decode_v2
from atoll.serve.docs import INIT_FILE, STATIC_FILES, VENDOR_FILES, docs_routes, vendored_file
from atoll.serve.errors import ServeError, problem_for
from atoll.serve.openapi import ModelDoc, build_openapi, column_schema, record_schema
from atoll.serve.openapi_schemas import DATETIME_PATTERN
from atoll.types import ColumnType, Role, Task

from .conftest import ServeInThread

PURPOSES = ["car", "medical", "other"]
METHODS = ("get", "post", "put", "patch", "delete")


def every_type_schema() -> Schema:
    """One column of each type, nullable and not, with ranges, categories and roles."""
    return Schema(
        {
            "id": Column(type=ColumnType.STRING, role=Role.ID, nullable=False),
            "age": Column(type=ColumnType.INT, min=18, max=120, nullable=False),
            "income": Column(type=ColumnType.FLOAT, min=0, description="yearly, in EUR"),
            "owner": Column(type=ColumnType.BOOL),
            "term": Column(type=ColumnType.CATEGORY, allowed=["36", "60"], nullable=False),
            "purpose": Column(type=ColumnType.CATEGORY, allowed=PURPOSES, unknown="allow"),
            "applied": Column(type=ColumnType.DATETIME),
            "note": Column(type=ColumnType.STRING),
            "y": Column(type=ColumnType.INT, role=Role.TARGET, nullable=False),
        },
        target="y",
    )


def numeric_schema() -> Schema:
    return Schema(
        {
            "x1": Column(type=ColumnType.FLOAT, nullable=False),
            "x2": Column(type=ColumnType.INT, min=0),
            "flag": Column(type=ColumnType.BOOL, nullable=False),
            "y": Column(type=ColumnType.FLOAT, role=Role.TARGET),
        },
        target="y",
    )


def credit() -> ModelDoc:
    return ModelDoc("credit-risk", 3, every_type_schema(), Task.BINARY, [0, 1])


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, kind, name = node["$ref"].split("/")
        node = doc["components"][kind][name]
    return node


def body_validator(doc: dict[str, Any], component: str) -> jsonschema.Draft202012Validator:
    root = {"$ref": f"#/components/schemas/{component}", "components": doc["components"]}
    return jsonschema.Draft202012Validator(root)


# -- the document ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "models, options",
    [
        ([credit()], {}),
        ([credit()], {"auth": False, "unknown_columns": "ignore", "max_rows": 5}),
        (
            [
                credit(),
                ModelDoc("prices.eu", 7, numeric_schema(), Task.REGRESSION, [], versions=(6,)),
                ModelDoc("kind", 1, numeric_schema(), Task.MULTICLASS, ["a", "b", "c"]),
            ],
            {},
        ),
    ],
    ids=["one-model", "no-auth", "three-models"],
)
def test_the_document_is_valid_openapi_3_1(models: list[ModelDoc], options: dict[str, Any]) -> None:
    doc = build_openapi(models, **options)
    assert doc["openapi"].startswith("3.1.")
    validate_openapi(doc)
    assert json.loads(orjson.dumps(doc)) == doc  # what /openapi.json sends is this document


def test_every_operation_has_a_unique_id_a_summary_and_a_500() -> None:
    doc = build_openapi([credit()])
    ops = operations(doc)
    ids = [op["operationId"] for _, _, op in ops]
    assert len(ids) == len(set(ids))
    for path, method, op in ops:
        assert op["summary"], (path, method)
        assert "500" in op["responses"], (path, method)


def test_every_route_is_documented() -> None:
    expected = {
        ("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics"), ("get", "/openapi.json"),
        ("get", "/docs"), ("get", "/docs/static/{file}"),
        ("get", "/v1/models"), ("get", "/v1/models/{name}"), ("post", "/v1/models/{name}/predict"),
        ("post", "/v1/feedback"),
        ("get", "/v2"), ("get", "/v2/health/live"), ("get", "/v2/health/ready"),
        ("get", "/v2/models/{name}"), ("get", "/v2/models/{name}/ready"),
        ("post", "/v2/models/{name}/infer"),
        ("get", "/v2/models/{name}/versions/{version}"),
        ("get", "/v2/models/{name}/versions/{version}/ready"),
        ("post", "/v2/models/{name}/versions/{version}/infer"),
        ("get", "/ping"), ("get", "/health"), ("get", "/version"), ("post", "/invocations"),
    }  # fmt: skip
    documented = {(method, path) for path, method, _ in operations(build_openapi([credit()]))}
    assert documented == expected


def test_the_server_routes_are_all_in_the_document() -> None:
    """Every route the app mounts (other than the document itself) is documented."""
    app_module = pytest.importorskip("atoll.serve.app")
    from starlette.routing import Route

    app_routes = {
        (method.lower(), route.path)
        for module in ("routes_ops", "routes_v1", "routes_v2", "routes_mlflow")
        for route in getattr(app_module, module).ROUTES
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    documented = {(method, path) for path, method, _ in operations(build_openapi([credit()]))}
    assert app_routes <= documented, app_routes - documented


def test_model_names_are_an_enum_and_bodies_are_per_model() -> None:
    one = build_openapi([credit()])
    for path, _, op in operations(one):
        if "{name}" in path:
            (name,) = [p for p in op["parameters"] if p["name"] == "name"]
            assert name["schema"]["enum"] == ["credit-risk"]
            assert name["in"] == "path" and name["required"]
    versions = one["paths"]["/v2/models/{name}/versions/{version}"]["get"]["parameters"]
    assert versions[1]["schema"]["enum"] == ["3"]

    numeric = ModelDoc("prices.eu", 7, numeric_schema(), Task.REGRESSION, [], versions=(6,))
    several = build_openapi([credit(), numeric])
    paths = set(several["paths"])
    assert {"/v1/models/credit-risk/predict", "/v1/models/prices.eu/predict"} <= paths
    assert {
        "/v2/models/prices.eu/versions/6/infer",
        "/v2/models/prices.eu/versions/7/infer",
    } <= paths
    assert "/v1/models/{name}/predict" not in paths
    listing = several["paths"]["/v1/models/{name}"]["get"]["parameters"][0]
    assert listing["schema"]["enum"] == ["credit-risk", "prices.eu"]
    query = several["paths"]["/invocations"]["post"]["parameters"][0]
    assert query["required"] and query["schema"]["enum"] == ["credit-risk", "prices.eu"]


def test_security_schemes_and_scopes() -> None:
    doc = build_openapi([credit()])
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == schemes["bearerAuth"] | {"type": "http", "scheme": "bearer"}
    assert schemes["apiKeyAuth"] | {"in": "header", "name": "X-API-Key"} == schemes["apiKeyAuth"]
    scopes = {
        ("post", "/v1/models/{name}/predict"): "predict",
        ("post", "/v2/models/{name}/infer"): "predict",
        ("post", "/invocations"): "predict",
        ("post", "/v1/feedback"): "feedback",
        ("get", "/v1/models"): "read",
        ("get", "/v2/models/{name}"): "read",
        ("get", "/metrics"): "read",
    }
    public = {"/healthz", "/readyz", "/v2", "/v2/health/live", "/ping", "/openapi.json", "/docs"}
    for path, method, op in operations(doc):
        if (method, path) in scopes:
            scope = scopes[(method, path)]
            assert op["security"] == [{"bearerAuth": [scope]}, {"apiKeyAuth": [scope]}]
        if "security" in op:
            assert {"401", "403", "429"} <= set(op["responses"]), path
        if path in public:
            assert "security" not in op and "401" not in op["responses"], path

    open_doc = build_openapi([credit()], auth=False)
    for path, _, op in operations(open_doc):
        assert "security" not in op and "401" not in op["responses"], path


def test_errors_use_the_envelope_of_their_protocol() -> None:
    doc = build_openapi([credit()])
    predict = doc["paths"]["/v1/models/{name}/predict"]["post"]["responses"]
    assert {"400", "404", "408", "413", "415", "422", "429", "503", "504"} <= set(predict)
    infer = doc["paths"]["/v2/models/{name}/infer"]["post"]["responses"]
    invocations = doc["paths"]["/invocations"]["post"]["responses"]
    for responses, envelope in (
        (predict, "Error"),
        (infer, "V2Error"),
        (invocations, "MlflowError"),
    ):
        schema = resolve(doc, responses["422"])["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{envelope}"}
    rate = resolve(doc, predict["429"])
    assert resolve(doc, rate["headers"]["Retry-After"])["required"]
    unauthorized = resolve(doc, predict["401"])
    assert resolve(doc, unauthorized["headers"]["WWW-Authenticate"])["required"]

    native = body_validator(doc, "Error")
    assert native.is_valid(
        {"error": {"code": "schema_violation", "message": "m", "request_id": "r",
                   "problems": [{"rule": "min", "column": "age", "count": 1, "rows": [0],
                                 "message": "values below min 18"}]}}
    )  # fmt: skip
    assert body_validator(doc, "V2Error").is_valid({"error": "m", "code": "bad_request"})
    mlflow = body_validator(doc, "MlflowError")
    assert mlflow.is_valid({"error_code": "BAD_REQUEST", "message": "m"})
    assert not mlflow.is_valid({"error": "m"})


def test_every_input_column_is_in_the_request_schemas() -> None:
    schema = every_type_schema()
    doc = build_openapi([credit()])
    record = doc["components"]["schemas"]["credit-risk.Record"]
    assert list(record["properties"]) == [*schema.inputs, "y"]
    assert record["additionalProperties"] is False
    assert set(record["required"]) == {"age", "term"}  # the non-nullable features
    for name in schema.inputs:
        assert record["properties"][name] == column_schema(schema.columns[name])
    assert record["properties"]["income"]["description"] == "yearly, in EUR"

    request = doc["components"]["schemas"]["credit-risk.PredictRequest"]
    records, columns = request["oneOf"]
    assert records["properties"]["instances"]["maxItems"] == 10_000
    assert columns["properties"]["columns"] == {"const": schema.inputs}
    tensors = doc["components"]["schemas"]["credit-risk.V2InferRequest"]["properties"]["inputs"]
    assert {t["title"] for t in tensors["items"]["anyOf"]} == {*schema.inputs, "y"}

    ignoring = build_openapi([credit()], unknown_columns="ignore", max_rows=5)
    loose = ignoring["components"]["schemas"]["credit-risk.Record"]
    assert loose["additionalProperties"] == {"type": ["string", "number", "boolean", "null"]}
    request = ignoring["components"]["schemas"]["credit-risk.PredictRequest"]
    assert request["oneOf"][0]["properties"]["instances"]["maxItems"] == 5


def test_a_matrix_tensor_is_documented_only_for_all_numeric_models() -> None:
    doc = build_openapi([ModelDoc("n", 1, numeric_schema(), Task.REGRESSION, [])])
    inputs = doc["components"]["schemas"]["n.V2InferRequest"]["properties"]["inputs"]
    assert [form["title"] for form in inputs["anyOf"]] == [
        "one tensor per column",
        "one 2-D tensor",
    ]
    matrix = body_validator(doc, "n.V2InferRequest")
    body = {"name": "x", "datatype": "FP64", "shape": [2, 3], "data": [[1.5, 2, 1], [0, 0, 0]]}
    assert matrix.is_valid({"inputs": [body]})
    assert not matrix.is_valid({"inputs": [body | {"shape": [2, 4]}]})
    assert not matrix.is_valid({"inputs": [body | {"data": [[1.5, 2, 2]]}]})  # flag is 0 or 1
    plain = build_openapi([credit()])["components"]["schemas"]["credit-risk.V2InferRequest"]
    assert plain["properties"]["inputs"]["title"] == "one tensor per column"


# -- the column schemas agree with the validator --------------------------------------------

PROBES: dict[str, list[Any]] = {
    "float": [0, 1.5, -2.5, 1e300, 10**20, "1.5", "x", None, [1.0], {}],
    "int": [0, 3, 3.0, -7, 3.5, 10**20, "3", None, "x"],
    "bool": [True, False, 0, 1, 1.0, 0.0, 2, -1, 0.5, "true", None],
    "category": ["36", "60", 36, 60, 36.0, "x", 37, "036", 1.5, True, None],
    "open_category": ["car", "boat", "", 7, -3, 2.0, 2.5, False, None],
    "string": ["", "text", 5, -5, 5.0, 5.5, True, None],
    "datetime": [
        "2024-01-02", "2024-01-02T03:04:05", "2024-01-02T03:04:05Z",
        "2024-01-02 03:04:05.123456789+05:30", "2024-01-02T03:04-01:00", "2024-02-28",
        "2023-02-29", "2024-13-01", "2024-01-32", "2024-01-02t03:04:05z",
        "2024-01-02T24:00:00", "2024-01-02T03:04:60", "2024-W01", "1678-01-01", "2261-12-31",
        "someday", "", 20240102, True, None,
    ],
}  # fmt: skip
COLUMNS = {
    "float": Column(type=ColumnType.FLOAT, nullable=False),
    "int": Column(type=ColumnType.INT, min=-10, max=10**21),
    "bool": Column(type=ColumnType.BOOL, nullable=False),
    "category": Column(type=ColumnType.CATEGORY, allowed=["36", "60"]),
    "open_category": Column(type=ColumnType.CATEGORY, allowed=PURPOSES, unknown="allow"),
    "string": Column(type=ColumnType.STRING, nullable=False),
    "datetime": Column(type=ColumnType.DATETIME),
}


def _validator_accepts(column: Column, value: Any) -> bool:
    schema = Schema({"c": column, "y": Column(type=ColumnType.FLOAT, role=Role.TARGET)}, "y")
    # two rows, so a lone bool or number is not read as a typed column of its own
    rows = [{"c": value}, {"c": None}] if column.nullable else [{"c": value}, {"c": value}]
    return schema.validate(rows, "predict").report.ok


@pytest.mark.parametrize(
    "kind, value",
    [(kind, value) for kind, values in PROBES.items() for value in values],
    ids=lambda v: repr(v),
)
def test_a_column_schema_allows_exactly_what_the_validator_accepts(kind: str, value: Any) -> None:
    column = COLUMNS[kind]
    if isinstance(value, list | dict):  # nested cells never reach the validator: the codecs 400
        assert not jsonschema.Draft202012Validator(column_schema(column)).is_valid(value)
        return
    allowed = jsonschema.Draft202012Validator(column_schema(column)).is_valid(value)
    assert allowed == _validator_accepts(column, value)


def test_the_datetime_pattern_is_portable_and_anchored() -> None:
    assert r"\d" not in DATETIME_PATTERN  # Python's \d matches other scripts' digits
    assert re.fullmatch(DATETIME_PATTERN[1:-1], "2024-01-02T03:04:05Z")
    assert not re.search(DATETIME_PATTERN, "x2024-01-02")


@pytest.mark.parametrize(
    "column, value",
    [
        (Column(type=ColumnType.FLOAT, nullable=False), True),  # a lone bool read as 1.0
        (Column(type=ColumnType.INT, nullable=False), False),
        (Column(type=ColumnType.DATETIME, nullable=False), "today"),  # pandas reads it as now
        (Column(type=ColumnType.DATETIME, nullable=False), "1000-01-01"),  # raises: a 500
    ],
    ids=["bool-as-float", "bool-as-int", "today-as-datetime", "year-1000-as-datetime"],
)
def test_values_the_document_forbids_are_refused(column: Column, value: Any) -> None:
    assert not jsonschema.Draft202012Validator(column_schema(column)).is_valid(value)
    schema = Schema({"c": column, "y": Column(type=ColumnType.FLOAT, role=Role.TARGET)}, "y")
    assert not schema.validate([{"c": value}], "predict").report.ok


def test_records_state_the_rules_that_span_rows() -> None:
    schema = every_type_schema()
    doc = build_openapi([credit()])
    records = body_validator(doc, "credit-risk.PredictRequest")
    base = {"age": 30, "term": "36", "income": 1.0, "owner": True, "purpose": "car",
            "applied": None, "note": None}  # fmt: skip
    cases: list[list[dict[str, Any]]] = [
        [base],
        [base, {"age": 40, "term": 60}],  # nullable features in at least one row
        [{"age": 40, "term": "60"}],  # ... but not in none
        [base | {"id": "a"}, base | {"id": "b"}],  # a non-nullable optional column: in every row
        [base | {"id": "a"}, base],  # ... not in some
        [base | {"y": 1}],  # the target may be sent
        [base | {"other": 1}],  # an unknown column
    ]
    for rows in cases:
        expected = schema.validate(rows, "predict").report.ok
        assert records.is_valid({"instances": rows}) == expected, rows


# -- generated bodies: what the document allows is accepted, what it forbids is refused -------

MAX_ROWS = 50
Decoder = Callable[[bytes, Schema], Decoded]
PROTOCOLS: dict[str, tuple[str, str, Decoder]] = {
    "native": (
        "/v1/models/{name}/predict",
        "PredictRequest",
        lambda body, schema: decode_native(
            body, "application/json", max_rows=MAX_ROWS, max_depth=32
        ),
    ),
    "mlflow": (
        "/invocations",
        "MlflowRequest",
        lambda body, schema: decode_mlflow(
            body, "application/json", input_names=schema.inputs, max_rows=MAX_ROWS, max_depth=32
        ),
    ),
    "v2": (
        "/v2/models/{name}/infer",
        "V2InferRequest",
        lambda body, schema: decode_v2(
            body,
            {},
            input_names=schema.inputs,
            max_rows=MAX_ROWS,
            max_inflated_bytes=1 << 20,
            max_depth=32,
        ),
    ),
}


def consistent_tensors(body: Any) -> Any:
    """Make V2 shapes agree with their data, as a schemathesis ``map_body`` hook would.

    JSON Schema cannot tie a tensor's shape to its data's length, nor one
    tensor's row count to another's, so the generated shapes are set here.
    """
    tensors = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(tensors, list) or not tensors:
        return body
    if not all(isinstance(t, dict) and isinstance(t.get("data"), list) for t in tensors):
        return body
    if not all(isinstance(t.get("shape"), list) and t["shape"] for t in tensors):
        return body
    if len(tensors) == 1 and len(tensors[0]["shape"]) == 2 and tensors[0]["shape"][1] != 1:
        tensors[0]["shape"][0] = len(tensors[0]["data"])  # one 2-D tensor
        return body
    if not all(isinstance(t.get("name"), str) for t in tensors):
        return body
    unique = list({t["name"]: t for t in reversed(tensors)}.values())
    rows = min(len(t["data"]) for t in unique)
    for tensor in unique:
        tensor["data"] = tensor["data"][:rows]
        tensor["shape"] = [rows, *tensor["shape"][1:2]]
    body["inputs"] = unique
    return body


def _accepted(decode: Decoder, body: Any, schema: Schema) -> bool:
    """What the server does with the body: decode (400/413 on shape), then validate (422)."""
    try:
        decoded = decode(json.dumps(body).encode(), schema)  # stdlib json, as schemathesis sends
    except ServeError:
        return False
    return schema.validate(decoded.columns, "predict").report.ok


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize(
    "make_schema", [every_type_schema, numeric_schema], ids=["mixed", "numeric"]
)
def test_generated_bodies_are_answered_as_the_document_says(
    protocol: str, mode: GenerationMode, make_schema: Callable[[], Schema]
) -> None:
    """Bodies schemathesis draws from the document, through the real decoder and validator."""
    schema = make_schema()
    doc = build_openapi([ModelDoc("m", 1, schema, Task.BINARY, [0, 1])], max_rows=MAX_ROWS)
    path, component, decode = PROTOCOLS[protocol]
    allows = body_validator(doc, f"m.{component}")
    operation = schemathesis.openapi.from_dict(doc)[path]["POST"]
    strategy = operation.as_strategy(generation_mode=mode, media_type="application/json")

    @settings(
        max_examples=25,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: Any) -> None:
        body = case.body
        if case.media_type != "application/json" or not isinstance(body, dict | list):
            return  # CSV, Arrow, or a negative case with no JSON body at all
        if protocol == "v2":
            body = consistent_tensors(body)
        valid = allows.is_valid(body)
        if mode is GenerationMode.POSITIVE:
            assert valid
        if valid or mode is GenerationMode.NEGATIVE:  # negative cases may mutate elsewhere
            assert _accepted(decode, body, schema) == valid, json.dumps(body)[:2000]

    check()


def test_examples_in_the_document_are_valid() -> None:
    doc = build_openapi([credit()])
    schema = every_type_schema()
    content = doc["paths"]["/v1/models/{name}/predict"]["post"]["requestBody"]["content"]
    predict = body_validator(doc, "credit-risk.PredictRequest")
    for example in content["application/json"]["examples"].values():
        assert predict.is_valid(example["value"])
        assert _accepted(PROTOCOLS["native"][2], example["value"], schema)
    infer = doc["paths"]["/v2/models/{name}/infer"]["post"]["requestBody"]["content"]
    v2 = body_validator(doc, "credit-risk.V2InferRequest")
    for example in infer["application/json"]["examples"].values():
        assert v2.is_valid(example["value"])
        assert _accepted(PROTOCOLS["v2"][2], example["value"], schema)
    mlflow = doc["paths"]["/invocations"]["post"]["requestBody"]["content"]["application/json"]
    for example in mlflow["examples"].values():
        assert body_validator(doc, "credit-risk.MlflowRequest").is_valid(example["value"])
        assert _accepted(PROTOCOLS["mlflow"][2], example["value"], schema)


def test_response_schemas_describe_the_answers() -> None:
    doc = build_openapi([credit()])
    native = body_validator(doc, "credit-risk.PredictResponse")
    row = {"id": "9b2f", "prediction": 1, "probabilities": {"0": 0.25, "1": 0.75}}
    assert native.is_valid({"model": "credit-risk", "version": 3, "predictions": [row]})
    assert not native.is_valid({"model": "credit-risk", "version": 3, "predictions": [
        row | {"probabilities": {"0": 0.25}}]})  # fmt: skip
    v2 = body_validator(doc, "credit-risk.V2InferResponse")
    output = {"name": "predict", "datatype": "INT64", "shape": [1], "data": [1]}
    assert v2.is_valid({"model_name": "credit-risk", "model_version": "3", "outputs": [output]})
    mlflow = body_validator(doc, "credit-risk.MlflowResponse")
    assert mlflow.is_valid({"predictions": [1, 0], "ids": ["a", "b"]})
    regression = build_openapi([ModelDoc("n", 1, numeric_schema(), Task.REGRESSION, [])])
    prediction = regression["components"]["schemas"]["n.PredictResponse"]
    item = prediction["properties"]["predictions"]["items"]
    assert "probabilities" not in item["properties"]


def test_record_schema_is_usable_on_its_own() -> None:
    record = record_schema(every_type_schema())
    validator = jsonschema.Draft202012Validator(record)
    assert validator.is_valid({"age": 30, "term": 36})
    assert not validator.is_valid({"age": 30})
    assert not validator.is_valid({"age": 30, "term": "36", "zip": "1000"})


# -- the docs page, over a real socket -------------------------------------------------------


async def _serve_error(request: Request, exc: Exception) -> Response:
    problem = problem_for(exc)
    return JSONResponse(problem.body(), problem.status, headers=problem.headers)


@pytest.fixture
def docs_url(serve_in_thread: ServeInThread) -> str:
    app = Starlette(routes=docs_routes(), exception_handlers={ServeError: _serve_error})
    return serve_in_thread(app)


def test_the_docs_page_loads_only_its_own_files(docs_url: str) -> None:
    page = httpx.get(f"{docs_url}/docs")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    html = page.text
    assert not re.search(r"https?://", html, re.IGNORECASE)  # no CDN, no other host
    assert 'data-openapi-url="/openapi.json"' in html
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.DOTALL)
    assert scripts and all('src="/docs/static/' in attrs and not body for attrs, body in scripts)
    linked = re.findall(r'(?:src|href)="/docs/static/([^"?]+)\?v=[0-9a-f]+"', html)
    assert set(linked) == set(STATIC_FILES)
    assert "style=" not in html and "on" + "load=" not in html


def test_the_docs_files_are_served_with_their_type_and_a_long_cache(docs_url: str) -> None:
    with httpx.Client(base_url=docs_url) as client:
        for name, content_type in STATIC_FILES.items():
            answer = client.get(f"/docs/static/{name}", headers={"Accept-Encoding": "identity"})
            assert answer.status_code == 200, name
            assert answer.headers["content-type"] == content_type
            assert "max-age=31536000" in answer.headers["cache-control"]
            assert answer.content
            if name in VENDOR_FILES:
                assert answer.content == vendored_file(name)[0]
            again = client.get(
                f"/docs/static/{name}", headers={"If-None-Match": answer.headers["etag"]}
            )
            assert again.status_code == 304 and not again.content

        zipped = client.get("/docs/static/swagger-ui-bundle.js")  # httpx asks for gzip
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.content == vendored_file("swagger-ui-bundle.js")[0]

        init = client.get(f"/docs/static/{INIT_FILE}").text
        assert "validatorUrl: null" in init  # Swagger UI would otherwise call validator.swagger.io
        assert 'getAttribute("data-openapi-url")' in init
        assert not re.search(r"https?://", init)


@pytest.mark.parametrize(
    "path",
    [
        "/docs/static/index.html",
        "/docs/static/swagger-ui-bundle.js.map",
        "/docs/static/..%2F__init__.py",
        "/docs/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
        "/docs/static/",
    ],
)
def test_only_allow_listed_files_are_served(docs_url: str, path: str) -> None:
    answer = httpx.get(f"{docs_url}{path}")
    assert answer.status_code == 404


def test_the_swagger_ui_files_render_openapi_3_1() -> None:
    """Swagger UI 4 refuses ``openapi: 3.1.x``; the shipped files must be version 5 or later."""
    bundle = vendored_file("swagger-ui-bundle.js")[0].decode("utf-8")
    assert "isOAS31" in bundle


VENDORED_SHA256 = {
    "swagger-ui-bundle.js": "e6a898692f2d768e807c3ba4626068a69a2c5dd960dd6c76f3e4d3a3de180af2",
    "swagger-ui.css": "5ed08757e53da3e026d6cbecc61fe5d43585c9560b302d534ad56692519a273d",
    "index.css": "9324807d424565a1639bb29f3754c8d4d45c1009c67674e996e33355f6929ce7",
    "favicon-16x16.png": "af24ad604dd7b3bcda8f975ab973075f4a2f70a4087944a12f8ef8b63a3e07c2",
    "favicon-32x32.png": "3ed612f41e050ca5e7000cad6f1cbe7e7da39f65fca99c02e99e6591056e5837",
}
"""Swagger UI 5.35.0's files as released (atoll/serve/swagger_ui/README.md lists them too)."""


def test_the_vendored_files_are_swagger_uis_release_unchanged() -> None:
    assert set(VENDORED_SHA256) == set(VENDOR_FILES)
    for name, digest in VENDORED_SHA256.items():
        body, zipped = vendored_file(name)
        assert hashlib.sha256(body).hexdigest() == digest, name
        assert zipped is None or gzip.decompress(zipped) == body
