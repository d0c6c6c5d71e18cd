"""The Open Inference Protocol (KServe V2) under ``/v2``, as real V2 clients speak it.

What tritonclient, the kserve SDK and the OIP client send and read is in
research/protocols.md: any or no Content-Type, binary tensors, gzip, and
``model_name`` in every answer.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import atoll

from .codecs import decode_v2, encode_v2, v2_model_metadata
from .errors import BadRequest
from .models import LoadedVersion, ModelSet
from .routes_ops import live, ready
from .routes_v1 import json_response
from .state import PredictCall, answer_route, authorize, request_id, server


async def server_metadata(request: Request) -> Response:
    return json_response({"name": "atoll", "version": atoll.__version__, "extensions": []})


async def model_metadata(request: Request) -> Response:
    name = request.path_params["name"]
    authorize(request, "read", name)
    loaded = _loaded(request)
    slot = server(request).models.get(name)
    versions = [str(v.version) for v in slot.versions()]
    predictor = loaded.predictor
    body = v2_model_metadata(name, versions, predictor.schema, predictor.task, predictor.classes)
    return json_response(body)


async def model_ready(request: Request) -> Response:
    authorize(request, "read", request.path_params["name"])
    _loaded(request)
    return json_response({"name": request.path_params["name"], "ready": True})


async def infer(request: Request) -> Response:
    name = request.path_params["name"]
    key = authorize(request, "predict", name)
    state = server(request)
    version = _version(request)
    _version_of(state.models, name, version)  # unknown: a 404 before the body is read
    call = PredictCall(state, name, request.headers, key, request_id(request), version)
    return await answer_route(request, infer_body, call)


async def infer_body(call: PredictCall, body: bytes) -> bytes:
    """The answer to a V2 inference request (the route's, and the direct path's)."""
    loaded = _version_of(call.state.models, call.model, call.version)
    limits = call.state.spec.limits
    decoded = decode_v2(
        body,
        call.headers,
        input_names=loaded.predictor.schema.features,
        max_rows=limits.max_rows,
        max_inflated_bytes=limits.max_body_bytes,
        max_depth=limits.max_json_depth,
    )
    answer = await call.predict(decoded)
    return encode_v2(
        answer.prediction,
        model=answer.model,
        version=answer.version,
        request_id=decoded.request_id,
        prediction_ids=answer.ids,
    )


def _version(request: Request) -> int | None:
    text = request.path_params.get("version")
    if text is None:
        return None
    if not text.isascii() or not text.isdigit():
        raise BadRequest(f"version must be a positive integer, not {text[:20]!r}")
    return int(text)


def _loaded(request: Request) -> LoadedVersion:
    """The version a V2 path names (the live one when the path has no version)."""
    return _version_of(server(request).models, request.path_params["name"], _version(request))


def _version_of(models: ModelSet, name: str, version: int | None) -> LoadedVersion:
    return models.get(name).current if version is None else models.version(name, version)


ROUTES = [
    Route("/v2", server_metadata, methods=["GET"]),
    Route("/v2/health/live", live, methods=["GET"]),
    Route("/v2/health/ready", ready, methods=["GET"]),
    Route("/v2/models/{name}", model_metadata, methods=["GET"]),
    Route("/v2/models/{name}/ready", model_ready, methods=["GET"]),
    Route("/v2/models/{name}/infer", infer, methods=["POST"]),
    Route("/v2/models/{name}/versions/{version}", model_metadata, methods=["GET"]),
    Route("/v2/models/{name}/versions/{version}/ready", model_ready, methods=["GET"]),
    Route("/v2/models/{name}/versions/{version}/infer", infer, methods=["POST"]),
]
