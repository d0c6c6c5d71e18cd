"""Probes and metrics: answered from the event loop, never behind a prediction.

``/healthz`` says the process is up (no database, no model). ``/readyz`` says
this worker should get traffic: models loaded and verified, not draining, and
the prediction log able to keep its promise. A database outage in batched
durability only *degrades* readiness (records spill to disk), so a shared
dependency never takes every replica out of the load balancer at once.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .routes_v1 import json_response
from .state import authorize, server


async def live(request: Request) -> Response:
    return json_response({"live": True})


async def ready(request: Request) -> Response:
    state = server(request)
    reasons = state.not_ready()
    if reasons:
        return json_response({"ready": False, "reasons": reasons}, 503)
    body: dict[str, object] = {"ready": True}
    degraded = state.degraded()
    if degraded:
        body["degraded"] = degraded
    return json_response(body)


async def metrics(request: Request) -> Response:
    authorize(request, "read")
    content, media_type = server(request).metrics.render()
    return Response(content, media_type=media_type)


ROUTES = [
    Route("/healthz", live, methods=["GET"]),
    Route("/readyz", ready, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
