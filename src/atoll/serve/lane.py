"""Prediction POSTs answered from the HTTP protocol, with no ASGI between.

Nearly all of a server's traffic is predictions: ``POST
/v1/models/{name}/predict``, ``/v2/models/{name}/infer`` and
``/invocations``. Through ASGI, each one costs an asyncio task running the
app, the hardening middleware's receive and send wrappers, the hot-route
dispatch, Starlette's ``Request`` and ``Response`` and three ASGI messages
through uvicorn's cycle: more of the event loop's time than the prediction
itself. The worker's protocol (:mod:`atoll.serve.http_protocol`) hands such a
request here instead, once its whole body has arrived, and this lane answers
it exactly as the ASGI route would: with the route's own answer function
(:func:`~atoll.serve.routes_v1.predict_body`,
:func:`~atoll.serve.routes_v2.infer_body`,
:func:`~atoll.serve.routes_mlflow.invocations_body`: decoding, prediction,
prediction log, encoding), the same authorization, the same error bodies
(:func:`atoll.serve.state.error_answer`), the same headers
(:func:`atoll.serve.limits.with_our_headers`), the same in-flight count,
metrics and access line (the hardening middleware's own methods).

The protocol offers a request only when the lane can answer it that way: an
HTTP/1.1 keep-alive POST with a ``Content-Length`` within the body limit, no
``Expect``, no query string, no percent-escapes, a model this worker serves
(V2: its live version), the server under its in-flight limit and no CORS
configured. Anything else, and any request whose body needs a second read
(where the ASGI path's body deadline applies), takes the ASGI path unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers

from .limits import Answered, HardeningMiddleware, scan_headers, with_our_headers
from .routes_mlflow import invocations_body, model_name
from .routes_v1 import predict_body
from .routes_v2 import infer_body
from .state import JSON, AnswerBody, PredictCall, ServerState, error_answer

LANE_STATE = "atoll.lane"
"""The lifespan state key under which each worker's protocol finds the lane."""
_JSON = JSON.encode("ascii")

Respond = Callable[[int, list[tuple[bytes, bytes]], bytes], None]
"""``(status, headers, body)``: the protocol's writer of one response."""


@dataclass(frozen=True, slots=True)
class DirectRoute:
    """A prediction route the lane answers, and the route's own code it answers with."""

    template: str  # its label in metrics and access lines
    answer: AnswerBody


NATIVE = DirectRoute("/v1/models/{name}/predict", predict_body)
V2 = DirectRoute("/v2/models/{name}/infer", infer_body)
MLFLOW = DirectRoute("/invocations", invocations_body)
_IN_PATH = ((b"/v1/models/", b"/predict", NATIVE), (b"/v2/models/", b"/infer", V2))


@dataclass(slots=True)
class LaneRequest:
    """A request the lane took: what its answer needs from the head."""

    route: DirectRoute
    name: str | None  # the model the path names; None: the headers name it (MLflow)
    path: str
    headers: list[tuple[bytes, bytes]]
    request_id: str
    client: str | None


class PredictLane:
    """Answers the prediction requests the protocol hands over; see the module docstring."""

    def __init__(self, hardening: HardeningMiddleware) -> None:
        self.hardening = hardening
        self.state: ServerState | None = None  # set once the app has started

    def take(
        self, url: bytes, headers: list[tuple[bytes, bytes]], client: str | None
    ) -> LaneRequest | None:
        """The request, if the lane answers it: a prediction URL of a served model.

        The protocol has checked the method, version, keep-alive and ``Expect``.
        """
        state = self.state
        if state is None or b"%" in url or b"?" in url or b"#" in url:
            return None
        found = _route(url)
        if found is None:
            return None
        route, name = found
        if name is not None and name not in state.models.slots:
            return None  # an unknown name's 404 comes from the ASGI path
        path = url.decode("ascii")  # the route matched: ASCII
        hardening = self.hardening
        if hardening.in_flight >= hardening.settings.max_in_flight:
            return None  # the ASGI path answers 503
        request_id, length, chunked = scan_headers(headers)
        if chunked or length is None or not length.isdigit():
            return None
        if int(length) > hardening.settings.body_limit(path)[0]:
            return None  # the ASGI path answers 413
        return LaneRequest(route, name, path, headers, request_id, client)

    async def answer(self, request: LaneRequest, body: bytes, respond: Respond) -> None:
        """Answer one request the lane took, through ``respond``; never raises for the request."""
        state = self.state
        assert state is not None  # the lane takes requests only once the app started
        started = time.perf_counter()
        hardening = self.hardening
        route, name, request_id = request.route, request.name, request.request_id
        key_id: str | None = None
        status = 500
        hardening.begin_request()
        try:
            headers = Headers(raw=request.headers)
            extra: list[tuple[bytes, bytes]] = []  # an error's own (Retry-After, ...)
            try:
                if name is None:
                    name = model_name(state, None, headers)
                key = state.auth.authorize(headers, request.client or "", "predict", name)
                key_id = key.key_id if key is not None else None
                call = PredictCall(state, name, headers, key, request_id)
                content = await route.answer(call, body)
                status = 200
            except Exception as error:
                # counted by model where the path names it, as the ASGI error handler does
                problem, content = error_answer(
                    state, request.path, request.name, error, request_id
                )
                status = problem.status
                extra = problem.raw_headers()
            own = [(b"content-length", b"%d" % len(content)), (b"content-type", _JSON), *extra]
            respond(status, with_our_headers(own, hardening.security_headers, request_id), content)
        finally:
            hardening.end_request()
            if hardening.metrics is not None:
                hardening.metrics.direct_requests.inc()
            answered = Answered(
                "POST",
                request.path,
                route.template,
                status,
                started,
                request_id,
                request.client,
                key_id,
            )
            hardening.answered(answered)


def _route(url: bytes) -> tuple[DirectRoute, str | None] | None:
    """The route a URL is, and the model it names (None for MLflow's, named in a header)."""
    if url == b"/invocations":
        return MLFLOW, None
    for prefix, suffix, route in _IN_PATH:
        if url.startswith(prefix) and url.endswith(suffix) and url.isascii():
            name = url[len(prefix) : -len(suffix)]
            if name and b"/" not in name:
                return route, name.decode("ascii")
    return None


def lane_of(app_state: dict[str, Any]) -> PredictLane | None:
    """The lane the app registered in its lifespan state (None: none, or CORS is on)."""
    lane = app_state.get(LANE_STATE)
    return lane if isinstance(lane, PredictLane) else None


__all__ = [
    "LANE_STATE",
    "MLFLOW",
    "NATIVE",
    "V2",
    "DirectRoute",
    "LaneRequest",
    "PredictLane",
    "Respond",
    "lane_of",
]
