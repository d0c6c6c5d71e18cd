"""MLflow's scoring routes (``/ping``, ``/invocations``), for clients written for MLflow.

Unlike MLflow, unknown columns are refused unless ``serve.unknown_columns:
ignore`` is set, and errors never carry a stack trace.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

import atoll

from .codecs import decode_mlflow, encode_mlflow
from .errors import BadRequest
from .state import PredictCall, ServerState, answer_route, authorize, request_id, server

MODEL_HEADER = "x-atoll-model"


async def ping(request: Request) -> Response:
    if server(request).not_ready():
        return PlainTextResponse("\n", 503)
    return PlainTextResponse("\n")


async def version(request: Request) -> Response:
    return PlainTextResponse(atoll.__version__)


async def invocations(request: Request) -> Response:
    state = server(request)
    name = model_name(state, request.query_params.get("model"), request.headers)
    key = authorize(request, "predict", name)
    call = PredictCall(state, name, request.headers, key, request_id(request))
    return await answer_route(request, invocations_body, call)


async def invocations_body(call: PredictCall, body: bytes) -> bytes:
    """The answer to an MLflow scoring request (the route's, and the direct path's)."""
    schema = call.state.models.get(call.model).current.predictor.schema
    limits = call.state.spec.limits
    decoded = decode_mlflow(
        body,
        call.headers.get("content-type"),
        input_names=schema.features,
        max_rows=limits.max_rows,
        max_depth=limits.max_json_depth,
        numeric=[name for name, column in schema.columns.items() if column.type.is_numeric],
    )
    answer = await call.predict(decoded)
    return encode_mlflow(answer.prediction, prediction_ids=answer.ids)


def model_name(state: ServerState, query: str | None, headers: Mapping[str, str]) -> str:
    """The single served model, or the one named by ``?model=`` or ``X-Atoll-Model``."""
    named = query or headers.get(MODEL_HEADER)
    if named:
        return named
    slots = state.models.slots
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
