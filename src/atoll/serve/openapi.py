"""The OpenAPI 3.1 document of a running server, generated from each served model's schema.

The document is a contract, and it is tested as one (schemathesis sends what it
allows and expects a 2xx, what it forbids and expects a 4xx): every route has
its scope, every status it can answer, and the error envelope its protocol's
clients read. The body schemas come from :mod:`atoll.serve.openapi_schemas`.

A route whose body depends on the model (``predict``, ``infer``) gets a
``{name}`` enum while one model is served; with several, one literal path per
model, so each body is exact for the model its path names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from atoll import __version__

from .docs import DOCS_PATH, OPENAPI_PATH, STATIC_FILES
from .openapi_schemas import (
    SHARED_SCHEMAS,
    Bodies,
    Json,
    ModelDoc,
    UnknownColumns,
    column_schema,
    example_row,
    model_ref,
    record_schema,
    ref,
)

OPENAPI_VERSION = "3.1.0"
DEFAULT_MAX_ROWS = 10_000

Protocol = Literal["native", "v2", "mlflow"]

STATUS_TEXT = {
    304: "Not modified: the cached copy is current.",
    400: "Malformed request: the body or a parameter cannot be read.",
    401: "A valid API key is required (missing, malformed, unknown, revoked or expired).",
    403: "The key lacks the scope this route needs, or is limited to other models.",
    404: "No such model, version or file.",
    408: "The request body did not arrive in time.",
    413: "The body is over the byte limit, or carries more rows than one request may.",
    415: "Unsupported Content-Type.",
    422: "The rows break the model's schema: one problem per violated rule, with its rows.",
    429: "Rate limit reached for this key (or too many failed attempts from this address).",
    500: "The server failed to answer; nothing wrong was sent.",
    503: "Overloaded, draining, or the store is unavailable: retry after Retry-After.",
    504: "The prediction did not finish in time.",
}
OUTER_STATUSES = frozenset({400, 408, 413, 500, 503})
"""Statuses the outermost HTTP layer may answer itself, in the native envelope."""

POST_STATUSES = (400, 408, 413)
"""What any route reading a body may answer: unreadable, too slow, too big."""

_ENVELOPES: dict[Protocol, str] = {"native": "Error", "v2": "V2Error", "mlflow": "MlflowError"}


def build_openapi(
    models: Sequence[ModelDoc],
    *,
    title: str = "atoll",
    version: str = __version__,
    max_rows: int = DEFAULT_MAX_ROWS,
    auth: bool = True,
    unknown_columns: UnknownColumns = "error",
) -> Json:
    """The OpenAPI 3.1 document of a server serving ``models``.

    Args:
        models: the served models (rebuild the document when they change).
        title: the document's title.
        version: the server's version.
        max_rows: rows one prediction request may carry (``serve.limits.max_rows``).
        auth: whether API keys are required; without, routes list no security and no 401/403/429.
        unknown_columns: ``serve.unknown_columns``; ``ignore`` lets rows carry extra keys.
    """
    builder = _Builder(Bodies(max_rows, unknown_columns), list(models), auth)
    return builder.document(title=title, version=version)


def _json(schema: Json, description: str) -> Json:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _named(name: str, description: str) -> Json:
    return _json(ref("schemas", name), description)


def _text(description: str, media_type: str = "text/plain") -> Json:
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


def _parameter(name: str, where: str, schema: Json, description: str, required: bool) -> Json:
    return {
        "name": name,
        "in": where,
        "required": required,
        "description": description,
        "schema": schema,
    }


@dataclass
class _Builder:
    """Writes the paths, collecting the shared error responses as it goes."""

    bodies: Bodies
    models: list[ModelDoc]
    auth: bool
    paths: dict[str, Json] = field(default_factory=dict)
    responses: dict[str, Json] = field(default_factory=dict)

    def document(self, *, title: str, version: str) -> Json:
        self._ops()
        self._native()
        self._v2()
        self._mlflow()
        self._docs()
        schemas = dict(SHARED_SCHEMAS)
        for model in self.models:
            schemas.update(self.bodies.model_schemas(model))
        return {
            "openapi": OPENAPI_VERSION,
            "info": {
                "title": title,
                "version": version,
                "summary": "Predictions from tabular models, in three protocols.",
                "description": _INFO,
                "license": {"name": "Apache 2.0", "identifier": "Apache-2.0"},
            },
            "tags": _TAGS,
            "paths": self.paths,
            "components": {
                "schemas": schemas,
                "responses": dict(sorted(self.responses.items())),
                "headers": _HEADERS,
                "securitySchemes": _SECURITY_SCHEMES,
            },
        }

    def add(
        self,
        method: str,
        path: str,
        operation_id: str,
        summary: str,
        ok: Mapping[str, Json],
        *,
        tag: str,
        scope: str | None = None,
        protocol: Protocol = "native",
        errors: Iterable[int] = (),
        parameters: Sequence[Json] = (),
        body: Json | None = None,
        description: str = "",
    ) -> None:
        """One operation; 500 always, 401/403/429 with a scope while keys are required."""
        statuses = {500, *errors}
        operation: Json = {"operationId": operation_id, "summary": summary, "tags": [tag]}
        if scope is not None and self.auth:
            operation["security"] = [{"bearerAuth": [scope]}, {"apiKeyAuth": [scope]}]
            statuses |= {401, 403, 429}
            description = f"{description}\n\nNeeds a key with the `{scope}` scope.".strip()
        if description:
            operation["description"] = description
        if parameters:
            operation["parameters"] = list(parameters)
        if body is not None:
            operation["requestBody"] = {"required": True, "content": body}
        responses = dict(ok)
        for status in sorted(statuses - {int(s) for s in ok}):
            responses[str(status)] = self.error(protocol, status)
        operation["responses"] = responses
        self.paths.setdefault(path, {})[method] = operation

    def error(self, protocol: Protocol, status: int) -> Json:
        """A shared error response, in the envelope of ``protocol``."""
        name = f"{protocol}.{status}"
        if name not in self.responses:
            envelope = ref("schemas", _ENVELOPES[protocol])
            if protocol != "native" and status in OUTER_STATUSES:
                envelope = {"anyOf": [envelope, ref("schemas", _ENVELOPES["native"])]}
            response = _json(envelope, STATUS_TEXT[status])
            response["headers"] = _error_headers(status)
            self.responses[name] = response
        return ref("responses", name)

    def per_model(self, template: str) -> list[tuple[ModelDoc, str, list[Json], str]]:
        """``(model, path, parameters, operationId suffix)`` for a route whose body is per model."""
        if len(self.models) == 1:
            params = [self.name] + ([self.version] if "{version}" in template else [])
            return [(self.models[0], template, params, "")]
        out: list[tuple[ModelDoc, str, list[Json], str]] = []
        for model in self.models:
            path = template.replace("{name}", model.name)
            if "{version}" not in template:
                out.append((model, path, [], f"_{model.name}"))
                continue
            for version in sorted({model.version, *model.versions}):
                literal = path.replace("{version}", str(version))
                out.append((model, literal, [], f"_{model.name}_{version}"))
        return out

    @property
    def name(self) -> Json:
        names = [m.name for m in self.models]
        return _parameter(
            "name", "path", {"type": "string", "enum": names}, "A served model.", True
        )

    @property
    def version(self) -> Json:
        loaded = {v for m in self.models for v in (m.version, *m.versions)}
        versions = [str(v) for v in sorted(loaded)]
        schema = {"type": "string", "enum": versions}
        return _parameter("version", "path", schema, "A loaded version of the model.", True)

    # -- probes, metrics, this document ----------------------------------------------------

    def _ops(self) -> None:
        live = {"200": _named("Live", "The process is up.")}
        ready = {
            "200": _named("Ready", "Ready for traffic (`degraded` names what is impaired)."),
            "503": _named("NotReady", "Not ready: the reasons are listed."),
        }
        self.add("get", "/healthz", "healthz", "Liveness probe", live, tag="health")
        self.add("get", "/readyz", "readyz", "Readiness probe", ready, tag="health")
        metrics = {"200": _text("Prometheus text exposition format.")}
        self.add(
            "get", "/metrics", "metrics", "Prometheus metrics", metrics, tag="ops", scope="read"
        )
        document = {"200": _json({"type": "object"}, "This document.")}
        self.add(
            "get", OPENAPI_PATH, "openapi", "This OpenAPI document", document, tag="ops",
            errors=[503],
        )  # fmt: skip

    # -- the native API ----------------------------------------------------------------------

    def _native(self) -> None:
        listing = {"200": _named("ModelList", "The served models.")}
        self.add(
            "get", "/v1/models", "v1_list_models", "List the served models", listing,
            tag="native", scope="read", errors=[503],
        )  # fmt: skip
        info = {"200": _named("ModelInfo", "The model, its version and its input schema.")}
        self.add(
            "get", "/v1/models/{name}", "v1_model", "A model's metadata and input schema", info,
            tag="native", scope="read", errors=[404, 503], parameters=[self.name],
        )  # fmt: skip
        for model, path, params, suffix in self.per_model("/v1/models/{name}/predict"):
            self._predict(model, path, params, suffix)
        stored = {"200": _named("FeedbackStored", "How many labels were stored.")}
        body = {"application/json": {"schema": ref("schemas", "FeedbackRequest")}}
        self.add(
            "post", "/v1/feedback", "v1_feedback", "Send ground truth for earlier predictions",
            stored, tag="native", scope="feedback", errors=[*POST_STATUSES, 503], body=body,
            description=_FEEDBACK,
        )  # fmt: skip

    def _predict(self, model: ModelDoc, path: str, params: list[Json], suffix: str) -> None:
        row = example_row(model.schema)
        inputs = model.schema.inputs
        examples = {
            "records": {"summary": "Records", "value": {"instances": [row]}},
            "columns": {
                "summary": "Columns",
                "value": {"columns": inputs, "data": [[row[c] for c in inputs]]},
            },
        }
        body = {
            "application/json": {
                "schema": model_ref(model, "PredictRequest"),
                "examples": examples,
            },
            "application/vnd.apache.arrow.stream": {
                "schema": {"type": "string", "format": "binary"}
            },
        }
        ok = {
            "200": _json(model_ref(model, "PredictResponse"), "One prediction per row, in order.")
        }
        self.add(
            "post", path, f"v1_predict{suffix}", f"Predict with {model.name}", ok, tag="native",
            scope="predict", parameters=params, body=body,
            errors=[*POST_STATUSES, 404, 415, 422, 503, 504],
            description=_PREDICT.format(max_rows=self.bodies.max_rows),
        )  # fmt: skip

    # -- the Open Inference Protocol (KServe V2) ---------------------------------------------

    def _v2(self) -> None:
        v2: dict[str, Any] = {"tag": "v2", "protocol": "v2"}
        server = {"200": _named("V2ServerMetadata", "Server metadata.")}
        self.add("get", "/v2", "v2_server", "Server metadata", server, errors=[503], **v2)
        live = {"200": _named("Live", "The process is up.")}
        self.add("get", "/v2/health/live", "v2_live", "Server live", live, **v2)
        ready = {
            "200": _named("Ready", "Ready for traffic."),
            "503": _named("NotReady", "Not ready: the reasons are listed."),
        }
        self.add("get", "/v2/health/ready", "v2_ready", "Server ready", ready, **v2)
        metadata = {"200": _named("V2ModelMetadata", "One input tensor per input column.")}
        model_ready = {"200": _named("V2ModelReady", "The model is ready.")}
        for base, params, suffix in (
            ("/v2/models/{name}", [self.name], ""),
            ("/v2/models/{name}/versions/{version}", [self.name, self.version], "_version"),
        ):
            label = " (a version)" if suffix else ""
            errors = [400, 404, 503] if suffix else [404, 503]
            common = {"scope": "read", "parameters": params, "errors": errors, **v2}
            self.add(
                "get", base, f"v2_model_metadata{suffix}", f"Model metadata{label}", metadata,
                **common,
            )  # fmt: skip
            self.add(
                "get", f"{base}/ready", f"v2_model_ready{suffix}", f"Model ready{label}",
                model_ready, **common,
            )  # fmt: skip
            for model, path, per_params, per_suffix in self.per_model(f"{base}/infer"):
                self._infer(model, path, per_params, suffix + per_suffix)

    def _infer(self, model: ModelDoc, path: str, params: list[Json], suffix: str) -> None:
        row = example_row(model.schema)
        tensors = [
            {"name": n, "shape": [1], "datatype": _v2_datatype(column_schema(c)), "data": [row[n]]}
            for n, c in ((n, model.schema.columns[n]) for n in model.schema.inputs)
        ]
        body = {
            "application/json": {
                "schema": model_ref(model, "V2InferRequest"),
                "examples": {
                    "columns": {"summary": "One tensor per column", "value": {"inputs": tensors}}
                },
            }
        }
        ok = {"200": _json(model_ref(model, "V2InferResponse"), "The outputs, one value per row.")}
        label = " (a version)" if "/versions/" in path else ""
        self.add(
            "post", path, f"v2_infer{suffix}", f"Infer with {model.name}{label}", ok, tag="v2",
            protocol="v2", scope="predict", parameters=params, body=body,
            errors=[*POST_STATUSES, 404, 422, 503, 504], description=_INFER,
        )  # fmt: skip

    # -- MLflow's scoring routes -------------------------------------------------------------

    def _mlflow(self) -> None:
        mlflow: dict[str, Any] = {"tag": "mlflow", "protocol": "mlflow"}
        ping = {"200": _text("Ready: the body is a newline."), "503": _text("Not ready.")}
        self.add("get", "/ping", "mlflow_ping", "Ready probe (MLflow)", ping, **mlflow)
        self.add("get", "/health", "mlflow_health", "Ready probe (MLflow)", ping, **mlflow)
        version = {"200": _text("The server's version.")}
        self.add(
            "get", "/version", "mlflow_version", "Server version (MLflow)", version,
            errors=[503], **mlflow,
        )  # fmt: skip
        several = len(self.models) > 1
        requests = [model_ref(m, "MlflowRequest") for m in self.models]
        answers = [model_ref(m, "MlflowResponse") for m in self.models]
        names = [m.name for m in self.models]
        query = _parameter(
            "model", "query", {"type": "string", "enum": names},
            "The model (or the `X-Atoll-Model` header); needed when several are served.", several,
        )  # fmt: skip
        csv = {"schema": {"type": "string"}}
        json_body: Json = {"schema": {"anyOf": requests} if several else requests[0]}
        if not several:
            row = example_row(self.models[0].schema)
            split = {"columns": list(row), "data": [list(row.values())]}
            json_body["examples"] = {
                "split": {"summary": "dataframe_split", "value": {"dataframe_split": split}}
            }
        body = {"application/json": json_body, "text/csv": csv, "application/csv": csv}
        answer = {"anyOf": answers} if several else answers[0]
        self.add(
            "post", "/invocations", "mlflow_invocations", "Predict (MLflow scoring protocol)",
            {"200": _json(answer, "One prediction per row.")}, scope="predict", parameters=[query],
            body=body, errors=[*POST_STATUSES, 404, 415, 422, 503, 504], description=_MLFLOW,
            **mlflow,
        )  # fmt: skip

    # -- the interactive docs ----------------------------------------------------------------

    def _docs(self) -> None:
        page = {"200": _text("Swagger UI for this document.", "text/html")}
        self.add("get", DOCS_PATH, "docs", "Interactive API docs", page, tag="ops", errors=[503])
        types = sorted(set(STATIC_FILES.values()))
        asset: dict[str, Json] = {
            "200": {
                "description": "A file of the docs page, cached for a year.",
                "content": {t: {"schema": {"type": "string"}} for t in types},
            },
            "304": {"description": STATUS_TEXT[304]},
        }
        file = _parameter(
            "file", "path", {"type": "string", "enum": sorted(STATIC_FILES)}, "A file name.", True
        )
        self.add(
            "get", f"{DOCS_PATH}/static/{{file}}", "docs_static", "A file of the docs page", asset,
            tag="ops", errors=[404, 503], parameters=[file],
        )  # fmt: skip


def _error_headers(status: int) -> Json:
    headers: Json = {"X-Request-ID": ref("headers", "X-Request-ID")}
    if status == 401:
        headers["WWW-Authenticate"] = ref("headers", "WWW-Authenticate")
    elif status == 429:
        headers["Retry-After"] = ref("headers", "Retry-After")
    elif status == 503:
        headers["Retry-After"] = ref("headers", "Retry-After-Optional")
    return headers


def _v2_datatype(schema: Json) -> str:
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    if "boolean" in types:
        return "BOOL"
    if "string" in types:
        return "BYTES"
    return "INT64" if "integer" in types else "FP64"


_INFO = """\
Predictions from the served models through three protocols: the native JSON API \
(`/v1`), the Open Inference Protocol (KServe V2, `/v2`) and MLflow's scoring routes \
(`/invocations`). Every row is checked against the model's schema before it reaches \
the model; refused rows answer 422 with one problem per violated rule.

Send an API key as `Authorization: Bearer atoll_...` or `X-API-Key: atoll_...`. \
Every answer carries `X-Request-ID` (yours, when you send a valid one)."""

_PREDICT = """\
Rows as records (`{{"instances": [{{...}}]}}`), as columns \
(`{{"columns": [...], "data": [[...]]}}`), or as an Arrow IPC stream \
(`application/vnd.apache.arrow.stream`). At most {max_rows} rows per request; \
larger jobs go through `atoll predict`. In records, a key missing from one row \
is null in that row."""

_INFER = """\
One input tensor per column, named like the column (MLServer's `pd` style, shape `[n]` \
or `[n, 1]`), or, for all-numeric models, one 2-D tensor of shape `[n, columns]` in \
schema order. Every tensor holds the same number of rows, and `shape` matches `data`. \
Any Content-Type is read as JSON; binary tensor data (`Inference-Header-Content-Length`) \
and gzip bodies work too."""

_MLFLOW = """\
Exactly one of `dataframe_split`, `dataframe_records`, `instances` or `inputs` \
(records, or rows in schema order; `inputs` may also map columns to lists of equal \
length). CSV bodies (`text/csv`, `application/csv`) need a header row."""

_FEEDBACK = """\
Labels for prediction ids answered earlier. An id not yet in the prediction log is \
kept too; a second label for an id replaces the first."""

_TAGS = [
    {"name": "native", "description": "The native JSON API."},
    {"name": "v2", "description": "The Open Inference Protocol (KServe V2)."},
    {"name": "mlflow", "description": "MLflow's scoring routes."},
    {"name": "health", "description": "Probes for load balancers and orchestrators."},
    {"name": "ops", "description": "Metrics, this document and its interactive docs."},
]

_SECURITY_SCHEMES = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "atoll_<key id>_<secret>",
        "description": "An API key from `atoll keys create`; each route names the scope it needs.",
    },
    "apiKeyAuth": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "The same API key, in a header of its own.",
    },
}

_RETRY_AFTER = {
    "description": "Seconds to wait before retrying.",
    "schema": {"type": "integer", "minimum": 1},
}
_HEADERS = {
    "X-Request-ID": {
        "description": "The request's id (the one sent, when valid).",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
    },
    "Retry-After": {**_RETRY_AFTER, "required": True},
    "Retry-After-Optional": _RETRY_AFTER,
    "WWW-Authenticate": {
        "description": "How to authenticate.",
        "required": True,
        "schema": {"type": "string"},
    },
}

__all__ = [
    "DEFAULT_MAX_ROWS",
    "OPENAPI_VERSION",
    "ModelDoc",
    "build_openapi",
    "column_schema",
    "record_schema",
]
