"""The outermost layer of the server: request ids, body limits, load shedding, headers, access log.

It is plain ASGI (Starlette's ``BaseHTTPMiddleware`` costs a task and a
stream per request) and wraps the whole Starlette app, *outside* its error
middleware, so that even a 500 carries the security headers and is logged.
Per request it does one pass over the headers and one regex match on a
precompiled pattern; body deadlines share one periodic timer per process
(``asyncio.timeout`` around every ``receive()`` would cost more than all the
rest of this layer).

Body limits are counted on the bytes actually received, chunked bodies
included; a ``Content-Length`` over the limit is refused before any body is
read. The body deadline (408) runs from the moment the request reaches the
app, so a client trickling its body byte by byte holds a slot for at most
``body_timeout_s``; once the body is in, the deadline is disarmed and a long
prediction is unaffected. Errors found while the app reads the body are raised
from ``receive()`` as :class:`~atoll.serve.errors.ServeError` so the app's own
handler can answer in its protocol's envelope; if the app lets them escape
(its error middleware answers 500), this layer answers 413/408 instead.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atoll.spec_serve import MIB, LimitsSpec, ServeSpec

from .access_log import ACCESS_LOGGER, AccessLog
from .auth import KEY_ID_STATE
from .errors import (
    INTERNAL,
    BadRequest,
    Overloaded,
    PayloadTooLarge,
    Problem,
    RequestTimeout,
    ServeError,
    problem_for,
)
from .ids import request_id
from .metrics import Metrics

REQUEST_ID_STATE = "request_id"
"""Where the request id is put (``scope["state"]``) for routes and the prediction log."""
UNMATCHED_ROUTE = "(unmatched)"
"""The route label of requests that matched no route or were refused before routing."""

HEALTH_PATHS = frozenset(
    {"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready", "/ping", "/health", "/metrics"}
)
"""Never refused for load: probes and scrapes must answer under saturation."""
LARGE_BODY_SUFFIXES = ("/predict", "/infer", "/invocations")

CSP = b"default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'"
_SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)
_OURS = frozenset(
    {name for name, _ in _SECURITY_HEADERS} | {b"content-security-policy", b"x-request-id"}
)
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
_CLOSE = {"Connection": "close"}

ErrorRenderer = Callable[[str, Problem, str], tuple[bytes, str]]
"""``(path, problem, request_id) -> (body, content type)``: how this layer's own errors look."""


def native_error(path: str, problem: Problem, request_id: str) -> tuple[bytes, str]:
    """The native envelope ``{"error": {code, message, request_id}}`` for every path."""
    del path
    return orjson.dumps(problem.body(request_id)), "application/json"


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """The HTTP limits of one worker process (defaults: research/security.md §5).

    Attributes:
        max_body_bytes: body cap on prediction routes (paths ending in ``large_body_suffixes``).
        max_other_body_bytes: body cap on every other route.
        body_timeout_s: the whole body must arrive within this, from the request's start.
        max_in_flight: requests in progress per process; past it 503 + ``Retry-After: 1``.
        exempt_paths: paths never refused for load (probes, metrics).
        large_body_suffixes: path endings that get ``max_body_bytes``.
        docs_prefix: where the interactive docs live (a CSP that lets them load).
    """

    max_body_bytes: int = 16 * MIB
    max_other_body_bytes: int = 1 * MIB
    body_timeout_s: float = 30.0
    max_in_flight: int = 1_024
    exempt_paths: frozenset[str] = HEALTH_PATHS
    large_body_suffixes: tuple[str, ...] = LARGE_BODY_SUFFIXES
    docs_prefix: str = "/docs"

    @classmethod
    def from_spec(cls, limits: LimitsSpec) -> LimitSettings:
        return cls(
            max_body_bytes=limits.max_body_bytes,
            max_other_body_bytes=limits.max_other_body_bytes,
            body_timeout_s=limits.body_timeout_s,
            max_in_flight=limits.max_in_flight,
        )

    def body_limit(self, path: str) -> tuple[int, str]:
        """The body cap of ``path`` and the setting that changes it."""
        if path.endswith(self.large_body_suffixes):
            return self.max_body_bytes, "serve.limits.max_body_bytes"
        return self.max_other_body_bytes, "serve.limits.max_other_body_bytes"


@dataclass(slots=True)  # made per request: frozen costs ~1.5 µs more; never mutated
class Answered:
    """What the access log and the request metrics note of one answered request."""

    method: str
    path: str
    route: str
    status: int
    started: float  # time.perf_counter() when the request reached the server
    request_id: str
    client: str | None
    key_id: str | None


class HardeningMiddleware:
    """Wraps the whole app; see the module docstring for what it enforces.

    Args:
        app: the ASGI app (the Starlette app itself, so its 500s pass through here).
        settings: the limits; defaults from research/security.md §5.
        metrics: where to count requests and in-flight requests (None: not counted).
        render_error: builds the body of this layer's own errors (native envelope by default).
        access_log: the logger of the one-JSON-line-per-request access log (None: off).
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: LimitSettings | None = None,
        *,
        metrics: Metrics | None = None,
        render_error: ErrorRenderer = native_error,
        access_log: logging.Logger | None = None,
    ) -> None:
        self.app = app
        self.settings = settings or LimitSettings()
        self.metrics = metrics
        self.render_error = render_error
        self.access_log = AccessLog(
            access_log if access_log is not None else logging.getLogger(ACCESS_LOGGER)
        )
        self._in_flight = 0
        self._clock = _MillisecondClock()
        self._watch = _BodyWatch(self.settings.body_timeout_s)
        self._docs = self.settings.docs_prefix
        self._docs_slash = self._docs + "/"
        self._headers = (*_SECURITY_HEADERS, (b"content-security-policy", CSP))
        self._docs_headers = (*_SECURITY_HEADERS, (b"content-security-policy", DOCS_CSP))

    @property
    def in_flight(self) -> int:
        """Requests this process is answering now."""
        return self._in_flight

    @property
    def security_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """What every response outside the docs carries (the docs get a looser CSP)."""
        return self._headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        request_id, length, chunked = scan_headers(scope["headers"])
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state[REQUEST_ID_STATE] = request_id
        docs = bool(self._docs) and (path == self._docs or path.startswith(self._docs_slash))
        security = self._docs_headers if docs else self._headers
        cycle = _Cycle(self, path, request_id, send, security)
        root_path = scope.get("root_path", "")
        try:
            refusal = self._refusal(path, length, cycle)
            if refusal is not None:
                await cycle.respond(problem_for(refusal))
            else:
                await self._serve(scope, receive, cycle, length, chunked)
        finally:
            self._finish(scope, root_path, cycle, started)

    def _refusal(self, path: str, length: bytes | None, cycle: _Cycle) -> ServeError | None:
        """An error to answer without calling the app: full, or an announced body too big."""
        if (
            self._in_flight >= self.settings.max_in_flight
            and path not in self.settings.exempt_paths
        ):
            return Overloaded(
                f"the server is answering its limit of {self.settings.max_in_flight} requests;"
                " retry shortly",
                retry_after_s=1,
            )
        if length is not None:
            try:
                announced = int(length)
            except ValueError:
                return BadRequest("the Content-Length header is not a number", headers=_CLOSE)
            if announced > cycle.limit:
                return _too_large(cycle.limit, cycle.limit_setting)
        return None

    async def _serve(
        self, scope: Scope, receive: Receive, cycle: _Cycle, length: bytes | None, chunked: bool
    ) -> None:
        has_body = chunked or (length is not None and length != b"0")
        if has_body:
            cycle.arm(receive, self._watch)
        self.begin_request()
        try:
            await self.app(scope, cycle.receive if has_body else receive, cycle.send)
        except ServeError as error:
            if not cycle.started:
                await cycle.respond(problem_for(error))
            elif error is not cycle.limit_error:  # ours was answered in place of the app's 500
                raise
        except Exception:
            if not cycle.started:  # a bare app without error middleware: still our headers
                await cycle.respond(INTERNAL)
            raise
        finally:
            if has_body:
                self._watch.discard(cycle)
            self.end_request()

    def begin_request(self) -> None:
        """Count a request in flight (every answered request, whichever path served it)."""
        self._in_flight += 1
        if self.metrics is not None:
            self.metrics.in_flight.inc()

    def end_request(self) -> None:
        self._in_flight -= 1
        if self.metrics is not None:
            self.metrics.in_flight.dec()

    def _finish(self, scope: Scope, root_path: str, cycle: _Cycle, started: float) -> None:
        route = _route_template(scope, root_path)
        if route == UNMATCHED_ROUTE:  # refused before routing: label it with the path's route
            route = _matching_template(self.app, scope)
        client = scope.get("client")
        self.answered(
            Answered(
                scope["method"],
                scope["path"],
                route,
                cycle.status or 500,
                started,
                cycle.request_id,
                client[0] if client else None,
                scope["state"].get(KEY_ID_STATE),
            )
        )

    def answered(self, request: Answered) -> None:
        """Count an answered request and write its access line."""
        seconds = time.perf_counter() - request.started
        if self.metrics is not None:
            self.metrics.observe_request(request.route, request.method, request.status, seconds)
        access_log = self.access_log
        if access_log.enabled:
            entry: dict[str, Any] = {
                "time": self._clock.now(),
                "request_id": request.request_id,
                "method": request.method,
                "path": request.path,
                "route": request.route,
                "status": request.status,
                "duration_ms": round(seconds * 1000.0, 3),
                "client": request.client,
            }
            if request.key_id:
                entry["key_id"] = request.key_id
            access_log.write(orjson.dumps(entry).decode())


class _MillisecondClock:
    """The time for access lines (ISO 8601, UTC, milliseconds), formatted once a millisecond.

    A loaded worker writes several lines a millisecond; formatting a datetime
    for each cost ~2% of a one-row prediction's time on the event loop.
    """

    def __init__(self) -> None:
        self._ms = -1
        self._text = ""

    def now(self) -> str:
        ms = time.time_ns() // 1_000_000
        if ms != self._ms:
            seconds, millis = divmod(ms, 1000)
            moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=millis * 1000)
            self._ms, self._text = ms, moment.isoformat(timespec="milliseconds")
        return self._text


class _BodyWatch:
    """Times out every body being read with one timer that sweeps a few times per deadline.

    A request past its deadline is cancelled only while it waits in our
    ``receive()``, where the cancellation is turned into a 408; if it is busy
    elsewhere, its next ``receive()`` sees the passed deadline itself.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.interval = min(1.0, max(0.01, timeout_s / 10.0))
        self._reading: dict[_Cycle, None] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, cycle: _Cycle, loop: asyncio.AbstractEventLoop) -> None:
        self._reading[cycle] = None
        if self._handle is None or self._loop is not loop:
            self._loop = loop
            self._handle = loop.call_later(self.interval, self._sweep)

    def discard(self, cycle: _Cycle) -> None:
        self._reading.pop(cycle, None)

    def _sweep(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        for cycle in [c for c in self._reading if c.deadline <= now]:
            del self._reading[cycle]
            cycle.expire()
        self._handle = self._loop.call_later(self.interval, self._sweep) if self._reading else None


class _Cycle:
    """One request's bookkeeping: body counting and deadline, the response's status."""

    __slots__ = (
        "_receive",
        "_send",
        "body_done",
        "deadline",
        "expired",
        "limit",
        "limit_error",
        "limit_setting",
        "middleware",
        "path",
        "received",
        "request_id",
        "security",
        "started",
        "status",
        "swallow",
        "waiting",
        "watch",
    )

    def __init__(
        self,
        middleware: HardeningMiddleware,
        path: str,
        request_id: str,
        send: Send,
        security: tuple[tuple[bytes, bytes], ...],
    ) -> None:
        self.middleware = middleware
        self.path = path
        self.request_id = request_id
        self._send = send
        self.security = security
        self.limit, self.limit_setting = middleware.settings.body_limit(path)
        self.received = 0
        self.body_done = False
        self.deadline = 0.0
        self.expired = False
        self.waiting: asyncio.Task[Any] | None = None
        self.status = 0
        self.started = False
        self.swallow = False
        self.limit_error: ServeError | None = None

    def arm(self, receive: Receive, watch: _BodyWatch) -> None:
        """Count and time the body: ``receive`` is the server's, ``watch`` the deadline keeper."""
        loop = asyncio.get_running_loop()
        self._receive = receive
        self.watch = watch
        self.deadline = loop.time() + watch.timeout_s
        watch.add(self, loop)

    def expire(self) -> None:
        """Called by the watch at the deadline: interrupt the wait for more body."""
        self.expired = True
        if self.waiting is not None:
            self.waiting.cancel()

    async def receive(self) -> Message:
        """The app's ``receive``: counts body bytes against the cap and the deadline."""
        if self.body_done:
            return await self._receive()
        if self.expired:
            raise self._timed_out()
        task = self.waiting = asyncio.current_task()
        try:
            message = await self._receive()
        except asyncio.CancelledError:
            # ours (the deadline) unless someone else cancelled the task too
            if not self.expired or task is None or task.uncancel() > 0:
                raise
            raise self._timed_out() from None
        finally:
            self.waiting = None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                raise self._limit(_too_large(self.limit, self.limit_setting))
            if not message.get("more_body", False):
                self.body_done = True
                self.watch.discard(self)
        else:  # http.disconnect: nothing more will come
            self.body_done = True
            self.watch.discard(self)
        return message

    def _timed_out(self) -> ServeError:
        return self._limit(
            RequestTimeout(
                f"the request body did not arrive within {self.watch.timeout_s:g} s"
                " (serve.limits.body_timeout_s)",
                headers=_CLOSE,
            )
        )

    def _limit(self, error: ServeError) -> ServeError:
        self.limit_error = error
        return error

    async def send(self, message: Message) -> None:
        """The app's ``send``: adds the headers, notes the status."""
        if self.swallow:
            return
        if message["type"] == "http.response.start":
            if self.limit_error is not None and message["status"] == 500 and not self.started:
                # the app's error middleware turned our 413/408 into a 500: answer ours
                self.swallow = True
                await self.respond(problem_for(self.limit_error))
                return
            await self._start(message["status"], message.get("headers", ()), message)
            return
        await self._send(message)

    async def respond(self, problem: Problem) -> None:
        """Answer ``problem`` directly (this layer's own errors)."""
        body, content_type = self.middleware.render_error(self.path, problem, self.request_id)
        headers = [
            (b"content-type", content_type.encode("latin-1")),
            (b"content-length", str(len(body)).encode("latin-1")),
            *problem.raw_headers(),
        ]
        await self._start(problem.status, headers, {"type": "http.response.start"})
        await self._send({"type": "http.response.body", "body": body})

    async def _start(
        self, status: int, headers: Iterable[tuple[bytes, bytes]], message: Message
    ) -> None:
        self.status = status
        self.started = True
        merged = with_our_headers(headers, self.security, self.request_id)
        await self._send({**message, "status": status, "headers": merged})


def with_our_headers(
    headers: Iterable[tuple[bytes, bytes]], security: Sequence[tuple[bytes, bytes]], request_id: str
) -> list[tuple[bytes, bytes]]:
    """A response's headers with the security headers and ``X-Request-ID`` added.

    A header the response set itself wins (e.g. a route's own Cache-Control).
    """
    merged = list(headers)
    present = {name.lower() for name, _ in merged}
    if present.isdisjoint(_OURS):  # the usual case: the app set none of them
        merged.extend(security)
    else:
        merged.extend(item for item in security if item[0] not in present)
    if b"x-request-id" not in present:
        merged.append((b"x-request-id", request_id.encode("ascii")))
    return merged


def harden(
    app: ASGIApp,
    settings: LimitSettings | None = None,
    *,
    cors_origins: Sequence[str] = (),
    metrics: Metrics | None = None,
    render_error: ErrorRenderer = native_error,
    access_log: logging.Logger | None = None,
) -> HardeningMiddleware:
    """Wrap ``app``: this layer outermost, then CORS (only when origins are configured)."""
    inner: ASGIApp = app
    if cors_origins:
        inner = CORSMiddleware(
            app,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "x-api-key", "content-type", "x-request-id"],
            expose_headers=["x-request-id", "retry-after"],
            max_age=600,
        )
    return HardeningMiddleware(
        inner, settings, metrics=metrics, render_error=render_error, access_log=access_log
    )


def harden_from_spec(
    app: ASGIApp,
    spec: ServeSpec,
    *,
    metrics: Metrics | None = None,
    render_error: ErrorRenderer = native_error,
) -> HardeningMiddleware:
    """:func:`harden` configured from the ``serve:`` section of ``atoll.yaml``."""
    return harden(
        app,
        LimitSettings.from_spec(spec.limits),
        cors_origins=spec.cors_origins,
        metrics=metrics,
        render_error=render_error,
    )


def scan_headers(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str, bytes | None, bool]:
    """One pass over the headers: (request id, Content-Length, chunked)."""
    given: bytes | None = None
    length: bytes | None = None
    chunked = False
    for name, value in headers:
        if name == b"x-request-id":
            given = value
        elif name == b"content-length":
            length = value.strip()
        elif name == b"transfer-encoding":
            chunked = True
    if given is not None and _REQUEST_ID.fullmatch(given):
        return given.decode("ascii"), length, chunked
    return request_id(), length, chunked


def _route_template(scope: Scope, root_path: str) -> str:
    """The matched route's template (mount prefixes included), never the raw path."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not isinstance(template, str):
        return UNMATCHED_ROUTE
    mounted = scope.get("root_path", "")
    return mounted[len(root_path) :] + template if len(mounted) > len(root_path) else template


def _matching_template(app: ASGIApp, scope: Scope) -> str:
    """The template of the first route of ``app`` that matches the path, if any."""
    for route in getattr(app, "routes", ()):
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            return str(route.path)
    return UNMATCHED_ROUTE


def _too_large(limit: int, setting: str) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body is over {limit} bytes ({setting})", headers=_CLOSE)


__all__ = [
    "HEALTH_PATHS",
    "REQUEST_ID_STATE",
    "UNMATCHED_ROUTE",
    "Answered",
    "ErrorRenderer",
    "HardeningMiddleware",
    "LimitSettings",
    "harden",
    "harden_from_spec",
    "native_error",
    "scan_headers",
    "with_our_headers",
]
