"""What every route of one worker shares, held on ``app.state.atoll``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from atoll.errors import AtollError
from atoll.spec_serve import ServeSpec

from .errors import Problem, envelope_json, problem_for

log = logging.getLogger("atoll.serve")

JSON = "application/json"

if TYPE_CHECKING:
    from atoll.store.keys import ApiKey
    from atoll.store.predlog import LogStats

    from .auth import Authenticator
    from .codecs import Decoded
    from .metrics import Metrics
    from .models import ModelSet
    from .service import Answer, PredictService


@dataclass
class ServerState:
    spec: ServeSpec
    models: ModelSet
    service: PredictService
    auth: Authenticator
    metrics: Metrics
    draining: bool = False

    @property
    def log_stats(self) -> LogStats | None:
        """The prediction log's counts (None when it is off)."""
        return self.service.recorder.stats

    def start_draining(self) -> None:
        self.draining = True

    def not_ready(self) -> list[str]:
        """Why this worker should not get traffic now (empty when it should)."""
        reasons = []
        if self.draining:
            reasons.append("draining")
        if not self.models.slots:
            reasons.append("no_models_loaded")
        stats = self.log_stats
        if stats is not None and self.service.recorder.strict and stats.spilling:
            reasons.append("prediction_log_unavailable")
        return reasons

    def degraded(self) -> list[str]:
        stats = self.log_stats
        if stats is not None and stats.spilling:
            return ["prediction_log_spilling"]
        return []


_SCOPE_KEY = "atoll.server"


def server(request: Request) -> ServerState:
    """The worker's shared state (looked up once per request, then kept in its scope)."""
    scope = request.scope
    state: ServerState | None = scope.get(_SCOPE_KEY)
    if state is None:
        state = scope[_SCOPE_KEY] = request.app.state.atoll
    return state


def authorize(request: Request, scope: str, model: str | None = None) -> ApiKey | None:
    """The caller's key, if it may use ``scope`` on ``model``; raises 401/403/429 otherwise."""
    return server(request).auth.authorize_request(request, scope, model)


@dataclass(slots=True)
class PredictCall:
    """An authorized prediction request, before its body is read: what answers it needs.

    The ASGI routes build one from their ``Request``; :mod:`atoll.serve.lane` from the
    head the protocol parsed. Each protocol's answer function takes it and the body.
    Not frozen: one is built per request, and a frozen dataclass costs ~1 µs more.
    """

    state: ServerState
    model: str
    headers: Mapping[str, str]
    key: ApiKey | None
    request_id: str
    version: int | None = None  # None: the live version (or the canary's pick)

    async def predict(self, decoded: Decoded) -> Answer:
        """Predict the decoded rows: what every protocol's answer does in the middle."""
        return await self.state.service.predict(
            self.model,
            decoded.columns,
            decoded.n_rows,
            version=self.version,
            key_id=self.key.key_id if self.key else None,
            request_id=self.request_id,
        )


AnswerBody = Callable[[PredictCall, bytes], Awaitable[bytes]]
"""A protocol's answer to an authorized prediction request: JSON bytes."""


async def answer_route(request: Request, answer: AnswerBody, call: PredictCall) -> Response:
    """A prediction route's response: its body read, then answered by ``answer``."""
    return Response(await answer(call, await read_body(request)), media_type=JSON)


async def read_body(request: Request) -> bytes:
    """The request's whole body, read once.

    What ``Request.body()`` does, without the async generator and context manager
    it reads through (~3% of a one-row prediction's time in the event loop).

    Raises:
        ClientDisconnect: the client went away before the body was complete.
    """
    chunks = []
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def error_answer(
    state: ServerState | None, path: str, model: str | None, error: Exception, request_id: str
) -> tuple[Problem, bytes]:
    """What a route's error tells the client, and the body in the route's protocol envelope.

    Counted as a model error when ``model`` is one this worker serves; an error that
    is neither ours nor routing's is a fault, logged with its traceback (never sent).
    """
    if not isinstance(error, AtollError | HTTPException):
        log.error("unexpected error on %s", path, exc_info=error)
    problem = problem_for(error)
    if model and state is not None and model in state.models.slots:
        state.metrics.observe_error(model, problem.code)
    return problem, envelope_json(path, problem, request_id)


def request_id(request: Request) -> str:
    value = request.scope.get("state", {}).get("request_id")
    return str(value) if value else ""
