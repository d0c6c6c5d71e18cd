"""The native prediction POST, answered from the HTTP protocol with no ASGI between.

Nearly all of a server's traffic is ``POST /v1/models/{name}/predict``. Through
ASGI, each one costs an asyncio task running the app, the hardening
middleware's receive and send wrappers, the hot-route dispatch, Starlette's
``Request`` and ``Response`` and three ASGI messages through uvicorn's cycle:
more of the event loop's time than the prediction itself. The worker's
protocol (:mod:`atoll.serve.http_protocol`) hands such a request here instead,
once its whole body has arrived, and this lane answers it exactly as the ASGI
path would: the same authorization, decoding, prediction and prediction log
(:func:`atoll.serve.routes_v1.predict_body`), the same error bodies
(:func:`atoll.serve.state.error_answer`), the same headers
(:func:`atoll.serve.limits.with_our_headers`), the same in-flight count,
metrics and access line (the hardening middleware's own methods).

The protocol offers a request only when the lane can answer it that way: an
HTTP/1.1 keep-alive POST with a ``Content-Length`` within the body limit, no
``Expect``, no query string, no percent-escapes, a model this worker serves,
the server under its in-flight limit and no CORS configured. Anything else,
and any request whose body needs a second read (where the ASGI path's body
deadline applies), takes the ASGI path unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException

from atoll.errors import AtollError

from .limits import Answered, HardeningMiddleware, scan_headers, with_our_headers
from .routes_v1 import JSON, predict_body
from .state import error_answer

if TYPE_CHECKING:
    from .state import ServerState

log = logging.getLogger("atoll.serve")

LANE_STATE = "atoll.lane"
"""The lifespan state key under which each worker's protocol finds the lane."""
ROUTE = "/v1/models/{name}/predict"
_PREFIX = b"/v1/models/"
_SUFFIX = b"/predict"
_JSON = JSON.encode("ascii")

Respond = Callable[[int, list[tuple[bytes, bytes]], bytes], None]
"""``(status, headers, body)``: the protocol's writer of one response."""


@dataclass(slots=True)
class LaneRequest:
    """A request the lane took: what its answer needs from the head."""

    name: str
    path: str
    headers: list[tuple[bytes, bytes]]
    request_id: str
    client: str | None


class PredictLane:
    """Answers native prediction requests the protocol hands over; see the module docstring."""

    def __init__(self, hardening: HardeningMiddleware) -> None:
        self.hardening = hardening
        self.state: ServerState | None = None  # set once the app has started

    def take(
        self, url: bytes, headers: list[tuple[bytes, bytes]], client: str | None
    ) -> LaneRequest | None:
        """The request, if the lane answers it: a native predict URL of a served model.

        The protocol has checked the method, version, keep-alive and ``Expect``.
        """
        state = self.state
        if (
            state is None
            or not url.startswith(_PREFIX)
            or not url.endswith(_SUFFIX)
            or b"%" in url
            or b"?" in url
            or b"#" in url
        ):
            return None
        try:
            path = url.decode("ascii")
        except UnicodeDecodeError:
            return None
        name = path[len(_PREFIX) : -len(_SUFFIX)]
        if name not in state.models.slots:  # an unknown name's 404 comes from the ASGI path
            return None
        hardening = self.hardening
        if hardening.in_flight >= hardening.settings.max_in_flight:
            return None  # the ASGI path answers 503
        request_id, length, chunked = scan_headers(headers)
        if chunked or length is None or not length.isdigit():
            return None
        if int(length) > hardening.settings.body_limit(path)[0]:
            return None  # the ASGI path answers 413
        return LaneRequest(name, path, headers, request_id, client)

    async def answer(self, request: LaneRequest, body: bytes, respond: Respond) -> None:
        """Answer one request the lane took, through ``respond``; never raises for the request."""
        state = self.state
        assert state is not None  # the lane takes requests only once the app started
        started = time.perf_counter()
        hardening = self.hardening
        name, request_id = request.name, request.request_id
        key_id: str | None = None
        status = 500
        hardening.begin_request()
        try:
            headers = Headers(raw=request.headers)
            extra: list[tuple[bytes, bytes]] = []
            try:
                key = state.auth.authorize(headers, request.client or "", "predict", name)
                key_id = key.key_id if key is not None else None
                content = await predict_body(
                    state, name, body, headers.get("content-type"), key, request_id
                )
                status = 200
            except Exception as error:
                if not isinstance(error, AtollError | HTTPException):
                    log.error("unexpected error on %s", request.path, exc_info=error)
                problem, content = error_answer(state, request.path, name, error, request_id)
                status = problem.status
                extra = [
                    (k.lower().encode("latin-1"), v.encode("latin-1"))
                    for k, v in problem.headers.items()
                ]
            own = [(b"content-length", b"%d" % len(content)), (b"content-type", _JSON), *extra]
            respond(status, with_our_headers(own, hardening.security_headers, request_id), content)
        finally:
            hardening.end_request()
            if hardening.metrics is not None:
                hardening.metrics.direct_requests.inc()
            hardening.answered(
                Answered(
                    "POST", request.path, ROUTE, status, started, request_id, request.client, key_id
                )
            )


def lane_of(app_state: dict[str, Any]) -> PredictLane | None:
    """The lane the app registered in its lifespan state (None: none, or CORS is on)."""
    lane = app_state.get(LANE_STATE)
    return lane if isinstance(lane, PredictLane) else None


__all__ = ["LANE_STATE", "ROUTE", "LaneRequest", "PredictLane", "Respond", "lane_of"]
