"""API-key checks on the request path: no database query, constant-time compare, rate limits.

Each worker holds a snapshot of every key (``KeyStore.snapshot()``) and
refreshes it every second in the background, so a revoked or expired key
stops working within about a second on every worker while a request costs a
dict lookup and one salted SHA-256. Every way a key can be wrong (missing,
malformed, unknown, revoked, expired) gets the same 401 message, so a caller
learns nothing about which keys exist.

Two token buckets guard the server: one per key (its ``rate_per_s`` or the
server default, divided among the worker processes) and one per client
address that only failed attempts drain. A client over its failure budget gets
429 for further failing attempts; a valid key keeps working from that address,
so one bad client behind a shared NAT cannot lock out the others.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.requests import Request

from atoll.errors import StoreUnavailableError
from atoll.spec_serve import ServeSpec
from atoll.store.keys import ApiKey, KeyStore, parse_key

from .errors import Forbidden, TooManyRequests, Unauthorized

log = logging.getLogger("atoll.serve.auth")

KEY_ID_STATE = "key_id"
"""Where a request's key id is noted (``scope["state"]``) for the access log."""
_UNAUTHORIZED = "a valid API key is required"
_DUMMY_SALT = bytes(16)
_DUMMY_DIGEST = hashlib.sha256(b"atoll: no such key").hexdigest()
MAX_TRACKED_CLIENTS = 100_000
MAX_VERIFIED_KEYS = 10_000
"""Presented keys remembered as checked, until the next snapshot (a bound, not a working size)."""
"""Failure buckets kept at most; full (idle) ones are dropped first."""


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """How keys are checked and rate-limited in one worker.

    Attributes:
        enabled: keys required; when off every route is open (loopback only).
        rate_per_s: default requests per second per key over all workers; 0 = unlimited.
        burst: default bucket size per key over all workers.
        auth_failures_per_min: failed attempts per client address over all workers.
        refresh_interval_s: how often the key snapshot is re-read.
        worker_count: worker processes sharing the limits (each takes its share).
    """

    enabled: bool = True
    rate_per_s: float = 100.0
    burst: int = 200
    auth_failures_per_min: int = 10
    refresh_interval_s: float = 1.0
    worker_count: int = 1

    @classmethod
    def from_spec(cls, spec: ServeSpec, worker_count: int = 1) -> AuthSettings:
        rate = spec.rate_limit
        return cls(
            enabled=spec.auth,
            rate_per_s=rate.per_key_per_s,
            burst=rate.burst,
            auth_failures_per_min=rate.auth_failures_per_min,
            worker_count=max(1, worker_count),
        )


class TokenBucket:
    """``capacity`` tokens refilled at ``rate`` per second; one request takes one."""

    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = now

    def take(self, now: float) -> float:
        """Take a token: 0.0 when granted, else the seconds until one is available."""
        tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return 0.0
        self.tokens = tokens
        return (1.0 - tokens) / self.rate

    def idle(self, now: float) -> bool:
        """Refilled to capacity: forgetting it changes nothing."""
        return self.tokens + (now - self.stamp) * self.rate >= self.capacity


class Authenticator:
    """Checks the caller's key against an in-memory snapshot of the key store.

    Start it in the app's lifespan: call :meth:`refresh` once before serving
    (so the first requests know the keys), then run :meth:`run` as a task and
    cancel it at shutdown.
    """

    def __init__(
        self,
        keys: KeyStore | None,
        settings: AuthSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or AuthSettings()
        if self.settings.enabled and keys is None:
            raise ValueError("auth is enabled but no key store was given")
        self._store = keys
        self._clock = clock
        self._keys: dict[str, ApiKey] = {}
        # presented key -> its ApiKey, checked against the current snapshot: a salted
        # sha256 per request is most of what authorizing costs. Emptied with each snapshot,
        # so a revocation is seen at the next refresh, as without it.
        self._verified: dict[str, ApiKey] = {}
        self._loaded = False
        self._refreshed_at: float | None = None
        self._failing = False
        workers = max(1, self.settings.worker_count)
        per_min = self.settings.auth_failures_per_min / workers
        self._failure_rate = per_min / 60.0
        self._failure_capacity = max(1.0, per_min)
        self._buckets: dict[str, tuple[float, TokenBucket]] = {}
        self._failures: dict[str, TokenBucket] = {}

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    @property
    def snapshot_age_s(self) -> float | None:
        """Seconds since the key snapshot was last read; None before the first read."""
        return None if self._refreshed_at is None else self._clock() - self._refreshed_at

    def authorize(
        self, headers: Mapping[str, str], client: str, scope: str, model: str | None = None
    ) -> ApiKey | None:
        """The caller's key if it may use ``scope`` on ``model``; None when auth is off.

        ``headers`` is looked up with lowercase names (Starlette's ``Headers``
        is case-insensitive). The key comes from ``Authorization: Bearer`` or,
        failing that, ``X-API-Key``.

        Raises:
            Unauthorized: no key, or a malformed, unknown, revoked or expired one.
            Forbidden: the key lacks ``scope`` or may not use ``model``.
            TooManyRequests: the key's rate, or the client's failure budget, is spent.
            StoreUnavailableError: the keys have never been read yet.
        """
        if not self.settings.enabled:
            return None
        if not self._loaded:
            raise StoreUnavailableError("the API keys are not loaded yet; try again")
        now = self._clock()
        key = self._verify(_presented_key(headers))
        if key is None:
            self._count_failure(client or "unknown", now)
            raise Unauthorized(_UNAUTHORIZED)
        if not key.allows(scope, model):
            if key.allows(scope, None):
                raise Forbidden(f"this API key may not use the model {model!r}")
            raise Forbidden(f"this API key lacks the {scope!r} scope")
        wait = self._take(key, now)
        if wait:
            raise TooManyRequests(
                "this API key is over its request rate; slow down", math.ceil(wait)
            )
        return key

    def authorize_request(
        self, request: Request, scope: str, model: str | None = None
    ) -> ApiKey | None:
        """:meth:`authorize` for a Starlette request; notes the key id for the access log."""
        client = request.client.host if request.client else ""
        key = self.authorize(request.headers, client, scope, model)
        if key is not None:
            request.scope.setdefault("state", {})[KEY_ID_STATE] = key.key_id
        return key

    def refresh(self) -> None:
        """Re-read every key now (blocking: a database query).

        Raises:
            StoreUnavailableError: the store could not be read; the old snapshot stays.
        """
        self._apply(self._read())

    async def run(self) -> None:
        """Refresh the snapshot forever, off the event loop; cancel the task to stop.

        A store outage keeps the last snapshot (logged once per outage) rather
        than locking every caller out; :attr:`snapshot_age_s` shows how stale it is.
        Returns at once when auth is off.
        """
        while self.settings.enabled:
            await asyncio.sleep(self.settings.refresh_interval_s)
            try:
                snapshot = await asyncio.to_thread(self._read)
            except Exception as error:  # keep serving with the last snapshot
                if not self._failing:
                    log.warning("could not refresh the API keys: %s", error)
                self._failing = True
                continue
            if self._failing:
                log.info("API keys refreshed again")
            self._failing = False
            self._apply(snapshot)

    def _read(self) -> dict[str, ApiKey]:
        if self._store is None:
            return {}
        return self._store.snapshot()

    def _apply(self, snapshot: dict[str, ApiKey]) -> None:
        """Swap the snapshot in and forget buckets nobody needs (on the loop thread)."""
        now = self._clock()
        self._keys = snapshot
        self._verified = {}
        self._loaded = True
        self._refreshed_at = now
        for key_id in [k for k in self._buckets if k not in snapshot]:
            del self._buckets[key_id]
        self._forget_idle_clients(now)

    def _verify(self, presented: str | None) -> ApiKey | None:
        if not presented:
            return None
        known = self._verified.get(presented)
        if known is not None:
            return known if known.active(datetime.now(UTC)) else None
        key = self._check(presented)
        if key is not None and len(self._verified) < MAX_VERIFIED_KEYS:
            self._verified[presented] = key
        return key

    def _check(self, presented: str) -> ApiKey | None:
        parsed = parse_key(presented)
        if parsed is None:
            return None
        key_id, secret = parsed
        key = self._keys.get(key_id)
        if key is None:  # same work as a real check: key ids are public, but be even
            hmac.compare_digest(
                hashlib.sha256(_DUMMY_SALT + secret.encode()).hexdigest(), _DUMMY_DIGEST
            )
            return None
        if not key.matches(secret) or not key.active(datetime.now(UTC)):
            return None
        return key

    def _take(self, key: ApiKey, now: float) -> float:
        rate = self.settings.rate_per_s if key.rate_per_s is None else key.rate_per_s
        if rate <= 0:
            return 0.0
        entry = self._buckets.get(key.key_id)
        if entry is None or entry[0] != rate:
            workers = max(1, self.settings.worker_count)
            capacity = max(1.0, max(float(self.settings.burst), rate) / workers)
            entry = (rate, TokenBucket(rate / workers, capacity, now))
            self._buckets[key.key_id] = entry
        return entry[1].take(now)

    def _count_failure(self, client: str, now: float) -> None:
        bucket = self._failures.get(client)
        if bucket is None:
            if len(self._failures) >= MAX_TRACKED_CLIENTS:
                self._forget_idle_clients(now)
                if len(self._failures) >= MAX_TRACKED_CLIENTS:  # flooded: drop the oldest
                    del self._failures[next(iter(self._failures))]
            bucket = TokenBucket(self._failure_rate, self._failure_capacity, now)
            self._failures[client] = bucket
        wait = bucket.take(now)
        if wait:
            raise TooManyRequests("too many failed authentication attempts", math.ceil(wait))

    def _forget_idle_clients(self, now: float) -> None:
        for client in [c for c, bucket in self._failures.items() if bucket.idle(now)]:
            del self._failures[client]


def _presented_key(headers: Mapping[str, str]) -> str | None:
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None
    api_key = headers.get("x-api-key")
    return api_key.strip() if api_key else None


__all__ = ["AuthSettings", "Authenticator", "TokenBucket"]
