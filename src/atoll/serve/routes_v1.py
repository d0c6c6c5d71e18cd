"""The native JSON API under ``/v1``: thin — authorize, decode, predict, encode."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from atoll.store.predlog import record_feedback

from .codecs import decode_native, encode_native, parse_json
from .errors import BadRequest
from .jsonio import check_depth
from .models import ModelSlot
from .state import JSON, PredictCall, answer_route, authorize, read_body, request_id, server


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type=JSON)


async def list_models(request: Request) -> Response:
    authorize(request, "read")
    slots = server(request).models.slots.values()
    return json_response({"models": [_summary(slot) for slot in slots]})


async def model_metadata(request: Request) -> Response:
    name = request.path_params["name"]
    authorize(request, "read", name)
    slot = server(request).models.get(name)
    predictor = slot.current.predictor
    body = _summary(slot) | {
        "classes": predictor.classes,
        "inputs": predictor.schema.inputs,
        "input_schema": predictor.schema.json_schema(),
    }
    return json_response(body)


async def predict(request: Request) -> Response:
    name = request.path_params["name"]
    key = authorize(request, "predict", name)
    state = server(request)
    state.models.get(name)  # an unknown model is a 404 before the body is read
    call = PredictCall(state, name, request.headers, key, request_id(request))
    return await answer_route(request, predict_body, call)


async def predict_body(call: PredictCall, body: bytes) -> bytes:
    """The answer to a native prediction request (the route's, and the direct path's)."""
    limits = call.state.spec.limits
    decoded = decode_native(
        body,
        call.headers.get("content-type"),
        max_rows=limits.max_rows,
        max_depth=limits.max_json_depth,
    )
    answer = await call.predict(decoded)
    return encode_native(
        answer.prediction, model=answer.model, version=answer.version, prediction_ids=answer.ids
    )


async def feedback(request: Request) -> Response:
    """Ground truth for earlier predictions: ``{"feedback": [{"prediction_id", "label"}]}``."""
    key = authorize(request, "feedback")
    state = server(request)
    body = parse_json(await read_body(request))
    check_depth(body, 1, state.spec.limits.max_json_depth)
    items = _feedback_items(body)
    engine = state.models.registry.engine
    try:
        stored = await asyncio.to_thread(
            record_feedback, engine, items, key.key_id if key else None
        )
    except ValueError as error:  # a label the log cannot store as JSON
        raise BadRequest(f"feedback cannot be stored: {error}") from None
    return json_response({"stored": stored})


def _feedback_items(body: Any) -> list[tuple[str, Any]]:
    entries = body.get("feedback") if isinstance(body, dict) else None
    if not isinstance(entries, list) or not entries:
        raise BadRequest('the body must be {"feedback": [{"prediction_id": ..., "label": ...}]}')
    items = []
    for i, entry in enumerate(entries):
        pid = entry.get("prediction_id") if isinstance(entry, dict) else None
        if not isinstance(pid, str) or not 1 <= len(pid) <= 36 or "\x00" in pid:
            raise BadRequest(f"feedback[{i}].prediction_id must be a prediction id string")
        if "label" not in entry or isinstance(entry["label"], dict | list):
            raise BadRequest(f"feedback[{i}].label must be a single value")
        items.append((pid, entry["label"]))
    return items


def _summary(slot: ModelSlot) -> dict[str, Any]:
    return {
        "name": slot.name,
        "ref": str(slot.ref),
        "alias": slot.ref.alias,
        "version": slot.current.version,
        "task": slot.current.predictor.task.value,
        "ready": True,
    }


ROUTES = [
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{name}", model_metadata, methods=["GET"]),
    Route("/v1/models/{name}/predict", predict, methods=["POST"]),
    Route("/v1/feedback", feedback, methods=["POST"]),
]
