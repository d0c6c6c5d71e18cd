"""MLflow's scoring routes (``/ping``, ``/invocations``), for clients written for MLflow.

Unlike MLflow, unknown columns are refused unless ``serve.unknown_columns:
ignore`` is set, and errors never carry a stack trace.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

import atoll

from .codecs import decode_mlflow, encode_mlflow
from .errors import BadRequest
from .routes_v1 import JSON
from .state import authorize, predict_rows, read_body, server

MODEL_HEADER = "x-atoll-model"


async def ping(request: Request) -> Response:
    if server(request).not_ready():
        return PlainTextResponse("\n", 503)
    return PlainTextResponse("\n")


async def version(request: Request) -> Response:
    return PlainTextResponse(atoll.__version__)


async def invocations(request: Request) -> Response:
    name = _model_name(request)
    key = authorize(request, "predict", name)
    state = server(request)
    schema = state.models.get(name).current.predictor.schema
    decoded = decode_mlflow(
        await read_body(request),
        request.headers.get("content-type"),
        input_names=schema.features,
        max_rows=state.spec.limits.max_rows,
        max_depth=state.spec.limits.max_json_depth,
        numeric=[name for name, column in schema.columns.items() if column.type.is_numeric],
    )
    answer = await predict_rows(request, name, decoded, key)
    return Response(encode_mlflow(answer.prediction, prediction_ids=answer.ids), media_type=JSON)


def _model_name(request: Request) -> str:
    """The single served model, or the one named by ``?model=`` or ``X-Atoll-Model``."""
    named = request.query_params.get("model") or request.headers.get(MODEL_HEADER)
    if named:
        return named
    slots = server(request).models.slots
    if len(slots) != 1:
        raise BadRequest(
            f"{len(slots)} models are served here: name one with ?model= or {MODEL_HEADER}"
        )
    return next(iter(slots))


ROUTES = [
    Route("/ping", ping, methods=["GET"]),
    Route("/health", ping, methods=["GET"]),
    Route("/version", version, methods=["GET"]),
    Route("/invocations", invocations, methods=["POST"]),
]
