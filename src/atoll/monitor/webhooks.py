"""Webhook delivery: a signed JSON POST, bounded in time, retried with backoff, never raising.

The signature, which a receiver checks with the shared secret::

    X-Atoll-Timestamp: 1780000000                  (Unix seconds when the attempt was made)
    X-Atoll-Signature: sha256=<hex>                (HMAC-SHA256, key: the secret's UTF-8 bytes,
                                                    message: timestamp + "." + the raw body)

Signing the timestamp with the body lets a receiver refuse replays: it drops
requests whose timestamp is more than a few minutes old. Each retry is signed
anew with its own timestamp; the body (and its ``event_id``) stays the same.

Only a 5xx, 408 or 429 answer, a timeout or a connection failure is retried;
any other 4xx means the request itself is wrong, and a redirect is never
followed (the signed body would go to a place nobody configured). The answer
is judged on its status line alone: the body is never read, so a receiver
that sends a huge or trickling body cannot hold a check or fill its memory,
and a 2xx is delivered whatever follows it.

Time is bounded: each attempt is cut off ``timeout_s`` after it starts (a
watchdog shuts the socket, so a receiver trickling bytes cannot hold it
longer), and the pauses between attempts double from ``backoff_s`` up to
:data:`MAX_PAUSE_S`. A delivery therefore ends within :meth:`Sender.deadline_s`:
``timeout_s * (retries + 1)`` plus its pauses. Whatever happens,
:meth:`Sender.send` returns a :class:`Delivery`: a failing receiver never stops a check.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import socket
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import SplitResult, urlsplit

SIGNATURE_HEADER = "X-Atoll-Signature"
TIMESTAMP_HEADER = "X-Atoll-Timestamp"
EVENT_HEADER = "X-Atoll-Event"
"""The event id, also in the body: lets a receiver drop a duplicate before parsing."""

MAX_PAUSE_S = 30.0
"""The longest pause between two attempts, however many retries."""

_RETRIED_4XX = (408, 429)
_MAX_REASON = 200
"""Characters of a receiver's reason phrase kept in an error."""


@dataclass(frozen=True)
class Target:
    """One webhook with its URL and secret read.

    Attributes:
        url: where to POST; never shown (tokens live in webhook paths): see :func:`shown_url`.
        secret: the HMAC key; never shown in a repr or a message.
        timeout_s: per attempt: connecting, sending and reading the answer's status.
        retries: further attempts after a retried failure.
    """

    url: str = field(repr=False)
    secret: bytes = field(repr=False)
    timeout_s: float = 5.0
    retries: int = 3


@dataclass(frozen=True)
class Delivery:
    """How sending to one webhook went.

    Attributes:
        url: the webhook as :func:`shown_url` shows it (no path, query or token).
        ok: the receiver answered 2xx.
        attempts: requests made.
        http_status: the last HTTP status received (``None``: no answer).
        error: what went wrong last, when not ``ok``.
    """

    url: str
    ok: bool
    attempts: int
    http_status: int | None = None
    error: str | None = None


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Atoll-Signature`` value of ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def shown_url(url: str) -> str:
    """``scheme://host[:port]`` and a short SHA-256 of the whole URL: safe for logs and history.

    Slack, Teams and Discord put the token in the path, so no part after the
    host is shown; the digest tells configured webhooks apart (compare it with
    ``sha256sum`` of the URL).
    """
    parts = urlsplit(url)
    host = parts.hostname or "?"
    host = f"[{host}]" if ":" in host else host
    with suppress(ValueError):
        host += f":{parts.port}" if parts.port is not None else ""
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    return f"{parts.scheme}://{host} (sha256 {digest})"


@dataclass(frozen=True)
class _Answer:
    status: int | None
    error: str | None
    retry: bool


class Sender:
    """POSTs signed bodies, retrying with exponential backoff.

    Args:
        backoff_s: the pause before the first retry; each later one doubles,
            up to :data:`MAX_PAUSE_S`.
        sleep: how to pause (tests pass a recording one).
        clock: Unix time for the timestamp header.
    """

    def __init__(
        self,
        *,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.backoff_s = backoff_s
        self._sleep = sleep
        self._clock = clock

    def pauses(self, retries: int) -> list[float]:
        """The pause before each retry, in order."""
        return [min(self.backoff_s * 2**i, MAX_PAUSE_S) for i in range(retries)]

    def deadline_s(self, target: Target) -> float:
        """The longest a delivery to ``target`` can take: every attempt's timeout and the pauses."""
        return target.timeout_s * (target.retries + 1) + sum(self.pauses(target.retries))

    def send(self, target: Target, body: bytes, event_id: str) -> Delivery:
        """POST ``body`` to ``target`` until it is accepted, refused or out of retries."""
        answer = self._attempt(target, body, event_id)
        attempts = 1
        for pause in self.pauses(target.retries):
            if answer.error is None or not answer.retry:
                break
            self._sleep(pause)
            answer = self._attempt(target, body, event_id)
            attempts += 1
        ok = answer.error is None
        return Delivery(shown_url(target.url), ok, attempts, answer.status, answer.error)

    def _attempt(self, target: Target, body: bytes, event_id: str) -> _Answer:
        """One POST, cut off ``timeout_s`` after it starts."""
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "atoll-alerts",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(target.secret, timestamp, body),
            EVENT_HEADER: event_id,
            "Connection": "close",
        }
        parts = urlsplit(target.url)
        try:
            connection = _connection(parts, target.timeout_s)
        except (ValueError, http.client.InvalidURL):
            return _Answer(None, "cannot send: the URL is not usable", retry=False)
        with _Watchdog(connection, target.timeout_s) as watchdog:
            try:
                connection.connect()
                if watchdog.fired:
                    raise TimeoutError
                connection.request("POST", _path(parts), body, headers)
                response = connection.getresponse()
                status, reason = response.status, response.reason
            except http.client.InvalidURL:  # control characters in the path
                return _Answer(None, "cannot send: the URL is not usable", retry=False)
            except (OSError, http.client.HTTPException) as exc:
                late = watchdog.fired or isinstance(exc, TimeoutError)
                error = f"no answer within {target.timeout_s:g}s" if late else _describe(exc)
                return _Answer(None, error, retry=True)
            finally:
                connection.close()  # the body is never read
        return _judge(status, reason)


def _connection(parts: SplitResult, timeout_s: float) -> http.client.HTTPConnection:
    """A connection to the URL's host (not yet opened); ``ValueError`` for a bad port."""
    host, port = parts.hostname or "", parts.port
    if parts.scheme == "https":
        return http.client.HTTPSConnection(host, port, timeout=timeout_s)
    return http.client.HTTPConnection(host, port, timeout=timeout_s)


def _path(parts: SplitResult) -> str:
    """What the request line asks for: path and query (a fragment is never sent)."""
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _judge(status: int, reason: str) -> _Answer:
    """Delivered on a 2xx; retried on a 5xx, 408 or 429; refused otherwise."""
    if 200 <= status < 300:
        return _Answer(status, None, retry=False)
    error = f"HTTP {status} {reason[:_MAX_REASON]}".rstrip()
    if 300 <= status < 400:
        return _Answer(status, f"{error} (redirects are not followed)", retry=False)
    return _Answer(status, error, retry=status >= 500 or status in _RETRIED_4XX)


class _Watchdog:
    """Shuts a connection's socket once its time is up, waking a read that waits on it.

    A socket timeout bounds each read, not the attempt: a receiver sending one
    byte at a time could hold it for ever. Shutting the socket from a timer
    thread ends the attempt whatever the receiver does.
    """

    def __init__(self, connection: http.client.HTTPConnection, seconds: float) -> None:
        self._connection = connection
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True
        self.fired = False

    def _cut(self) -> None:
        self.fired = True
        sock = self._connection.sock
        if sock is not None:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._timer.cancel()


def _describe(exc: BaseException) -> str:
    """An error in words, without the URL (only the host can appear, in TLS errors)."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
