"""The one table from errors to HTTP answers: statuses live here and nowhere else.

Every failure reaches the client as a :class:`Problem` (a status, a stable
``code``, a message and, for schema errors, one entry per violated rule with
its column and rows). Each protocol wraps the problem in the envelope its
clients read (see ``routes_*``); none of them ever shows a traceback, a path
or a class name: anything not listed here is a 500 ``internal_error``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.exceptions import HTTPException

from atoll.errors import (
    AtollError,
    NotFoundError,
    SchemaError,
    StoreUnavailableError,
)


class ServeError(AtollError):
    """A fault found by the HTTP layer; subclasses fix the status and the code."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None, **context: Any):
        super().__init__(message, **context)
        self.headers = headers or {}


class BadRequest(ServeError):
    """The body is malformed or does not have the shape the route reads."""


class NotFound(ServeError):
    status = 404
    code = "not_found"


class UnsupportedMediaType(ServeError):
    status = 415
    code = "unsupported_media_type"


class PayloadTooLarge(ServeError):
    """Too many bytes or too many rows: online requests are bounded."""

    status = 413
    code = "payload_too_large"


class Unauthorized(ServeError):
    status = 401
    code = "unauthorized"

    def __init__(self, message: str = "a valid API key is required") -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="atoll"'})


class Forbidden(ServeError):
    status = 403
    code = "forbidden"


class Conflict(ServeError):
    status = 409
    code = "conflict"


class TooManyRequests(ServeError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after_s))})


class Overloaded(ServeError):
    """The server is full (in-flight or batching queue) or draining: try again soon."""

    status = 503
    code = "overloaded"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after_s))})


class RequestTimeout(ServeError):
    """The client did not send its headers or body in time."""

    status = 408
    code = "request_timeout"


class PredictionTimeout(ServeError):
    status = 504
    code = "timeout"


class LogUnavailable(ServeError):
    """Strict durability could not be confirmed (the log stopped, or took too long): no answer."""

    status = 503
    code = "prediction_log_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": "1"})


class InvalidOutput(ServeError):
    """The model answered something that is not a valid prediction: never sent."""

    status = 500
    code = "invalid_output"


@dataclass(frozen=True)
class Problem:
    """What the client is told about a failure."""

    status: int
    code: str
    message: str
    problems: list[dict[str, Any]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        """The native envelope: ``{"error": {code, message, request_id, problems}}``."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.problems:
            error["problems"] = self.problems
        if request_id:
            error["request_id"] = request_id
        return {"error": error}

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """Its headers as an HTTP response carries them (lower-case names, bytes)."""
        return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]


INTERNAL = Problem(500, "internal_error", "the server failed to answer; see its log")


def problem_for(error: BaseException) -> Problem:
    """Map any exception to what the client may see; unknown ones are 500, unexplained."""
    if isinstance(error, ServeError):
        return Problem(error.status, error.code, error.message, headers=dict(error.headers))
    if isinstance(error, HTTPException):  # routing: unknown path (404), wrong method (405)
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return Problem(
            error.status_code, code, str(error.detail), headers=dict(error.headers or {})
        )
    if isinstance(error, SchemaError):
        problems = [v.to_dict() for v in error.report.violations]
        return Problem(422, "schema_violation", error.report.summary(), problems)
    if isinstance(error, NotFoundError):
        return Problem(404, "not_found", error.message)
    if isinstance(error, StoreUnavailableError):
        message = "the store is unavailable; try again"
        return Problem(503, "store_unavailable", message, [], {"Retry-After": "1"})
    if isinstance(error, AtollError) and isinstance(error, ValueError):
        return Problem(422, "invalid", error.message)
    return INTERNAL


MLFLOW_ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    413: "REQUEST_LIMIT_EXCEEDED",
    422: "INVALID_PARAMETER_VALUE",
    429: "REQUEST_LIMIT_EXCEEDED",
    503: "TEMPORARILY_UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def envelope_json(path: str, problem: Problem, request_id: str) -> bytes:
    """:func:`envelope` as the JSON body every error answer sends (no id when empty)."""
    return orjson.dumps(envelope(path, problem, request_id or None))


def envelope(path: str, problem: Problem, request_id: str | None) -> dict[str, Any]:
    """The error body in the shape the route's protocol clients read.

    V2 clients (the kserve SDK) show ``{"error": "<message>"}``; MLflow clients
    read ``error_code`` and ``message``; the native API nests a structured error.
    """
    if path == "/v2" or path.startswith("/v2/"):
        body: dict[str, Any] = {"error": problem.message, "code": problem.code}
    elif path in ("/invocations", "/ping", "/health", "/version"):
        fallback = "BAD_REQUEST" if problem.status < 500 else "INTERNAL_ERROR"
        code = MLFLOW_ERROR_CODES.get(problem.status, fallback)
        body = {"error_code": code, "message": problem.message}
    else:
        return problem.body(request_id)
    if problem.problems:
        body["problems"] = problem.problems
    if request_id:
        body["request_id"] = request_id
    return body
