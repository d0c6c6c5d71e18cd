"""API keys: scoped, optionally model-bound, expiring secrets of which only a salted hash is kept.

A key reads ``atoll_<key_id>_<secret>``. The key id is public (it appears in
lists, logs and the prediction log); the secret is shown once, at creation,
and the store keeps only ``sha256(salt + secret)``. Servers do not query the
database per request: they hold a :meth:`KeyStore.snapshot` refreshed every
second and check secrets with :meth:`ApiKey.matches` in constant time.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from atoll.errors import NotFoundError, RegistryError
from atoll.store._queries import add_audit
from atoll.store.db import run_transaction
from atoll.store.tables import api_keys, utcnow
from atoll.types import check_model_name

SCOPES = ("predict", "feedback", "read", "admin")
"""What a key may do; ``admin`` implies every other scope."""

KEY_PREFIX = "atoll_"
_KEY = re.compile(r"atoll_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_MAX_KEY_LENGTH = 128
_MAX_DESCRIPTION = 1000
_ID_ATTEMPTS = 5


@dataclass(frozen=True)
class ApiKey:
    """One key as the store knows it: everything but the secret.

    Attributes:
        key_id: the public 12-hex-character id.
        scopes: what the key may do (see :data:`SCOPES`).
        models: the model names it is limited to; empty means every model.
        rate_per_s: its request rate limit; None is the server default, 0 unlimited.
        salt: hex of the 16 random bytes hashed with the secret.
        digest: hex sha256 of salt bytes + secret.
    """

    key_id: str
    scopes: tuple[str, ...]
    models: tuple[str, ...]
    description: str
    rate_per_s: float | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    created_by: str
    salt: str = field(repr=False)
    digest: str = field(repr=False)

    def active(self, now: datetime) -> bool:
        """Not revoked, and not past its expiry at ``now``."""
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at

    def allows(self, scope: str, model: str | None) -> bool:
        """Whether the key grants ``scope`` on ``model`` (None: a request about no one model)."""
        if scope not in self.scopes and "admin" not in self.scopes:
            return False
        return not self.models or model is None or model in self.models

    def matches(self, secret: str) -> bool:
        """Whether ``secret`` is this key's secret, compared in constant time."""
        return hmac.compare_digest(_digest(self.salt, secret), self.digest)


def parse_key(plaintext: str) -> tuple[str, str] | None:
    """Split ``atoll_<key_id>_<secret>`` into ``(key_id, secret)``; None if malformed."""
    if len(plaintext) > _MAX_KEY_LENGTH:
        return None
    found = _KEY.fullmatch(plaintext)
    return (found.group(1), found.group(2)) if found else None


class KeyStore:
    """Create, list and revoke API keys; every change is recorded in the audit log."""

    def __init__(self, engine: Engine, actor: str = "atoll") -> None:
        self.engine = engine
        self.actor = actor

    def create(
        self,
        scopes: Sequence[str],
        models: Sequence[str] = (),
        *,
        expires_in: timedelta | None = None,
        description: str = "",
        rate_per_s: float | None = None,
    ) -> tuple[ApiKey, str]:
        """Make a new key; returns it with its plaintext, which is never shown again.

        Raises:
            RegistryError: no scope, an unknown scope, a non-positive ``expires_in``,
                a negative or non-finite rate, or a description too long.
            InvalidNameError: a model name that is not a valid name.
        """
        clean_scopes = _check_scopes(scopes)
        clean_models = tuple(dict.fromkeys(check_model_name(name) for name in models))
        _check_options(expires_in, description, rate_per_s)
        now = utcnow()
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_hex(16)
        row: dict[str, Any] = {
            "salt": salt,
            "digest": _digest(salt, secret),
            "scopes": list(clean_scopes),
            "models": list(clean_models),
            "description": description,
            "rate_per_s": None if rate_per_s is None else float(rate_per_s),
            "created_at": now,
            "expires_at": None if expires_in is None else now + expires_in,
            "revoked_at": None,
            "created_by": self.actor,
        }
        for attempt in range(_ID_ATTEMPTS):
            row["key_id"] = secrets.token_hex(6)
            try:
                key = run_transaction(self.engine, lambda conn: self._insert(conn, row))
            except sa.exc.IntegrityError:  # 48-bit id collision: draw another
                if attempt == _ID_ATTEMPTS - 1:
                    raise
                continue
            return key, f"{KEY_PREFIX}{key.key_id}_{secret}"
        raise AssertionError("unreachable")  # pragma: no cover

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key for good; revoking it again changes nothing.

        Raises:
            NotFoundError: no key has this id.
        """

        def work(conn: Connection) -> ApiKey:
            key = _one(conn, key_id, lock=True)
            if key.revoked_at is not None:
                return key
            conn.execute(
                sa.update(api_keys).where(api_keys.c.key_id == key_id).values(revoked_at=utcnow())
            )
            add_audit(conn, self.actor, "revoke_key", None, {"key_id": key_id})
            return _one(conn, key_id)

        return run_transaction(self.engine, work)

    def snapshot(self) -> dict[str, ApiKey]:
        """Every key (revoked and expired too) by key id, read in one query."""
        keys = run_transaction(self.engine, _all_keys, read_only=True)
        return {key.key_id: key for key in keys}

    def get(self, key_id: str) -> ApiKey:
        """One key by id.

        Raises:
            NotFoundError: no key has this id.
        """
        return run_transaction(self.engine, lambda conn: _one(conn, key_id), read_only=True)

    def list(self, include_revoked: bool = True) -> builtins.list[ApiKey]:
        """Every key, oldest first; revoked ones too unless ``include_revoked`` is off."""
        keys = run_transaction(self.engine, _all_keys, read_only=True)
        return [key for key in keys if include_revoked or key.revoked_at is None]

    def _insert(self, conn: Connection, row: dict[str, Any]) -> ApiKey:
        conn.execute(api_keys.insert().values(**row))
        detail = {
            "key_id": row["key_id"],
            "scopes": row["scopes"],
            "models": row["models"],
            "expires_at": row["expires_at"].isoformat() if row["expires_at"] else None,
        }
        add_audit(conn, self.actor, "create_key", None, detail)
        return _one(conn, row["key_id"])


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode("utf-8")).hexdigest()


def _check_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    if isinstance(scopes, str):
        scopes = [scopes]
    if not scopes:
        raise RegistryError(f"a key needs at least one scope: use some of {list(SCOPES)}")
    for scope in scopes:
        if scope not in SCOPES:
            raise RegistryError(
                f"unknown scope {scope!r}: use one of {list(SCOPES)}", scope=str(scope)
            )
    return tuple(scope for scope in SCOPES if scope in scopes)


def _check_options(
    expires_in: timedelta | None, description: str, rate_per_s: float | None
) -> None:
    if expires_in is not None and expires_in <= timedelta(0):
        raise RegistryError(f"a key's lifetime must be positive, not {expires_in}")
    if len(description) > _MAX_DESCRIPTION:
        raise RegistryError(f"a key's description may have at most {_MAX_DESCRIPTION} characters")
    if rate_per_s is not None and not (math.isfinite(rate_per_s) and rate_per_s >= 0):
        raise RegistryError(
            f"a key's rate must be a finite number >= 0 (0 = unlimited), not {rate_per_s}"
        )


def _one(conn: Connection, key_id: str, *, lock: bool = False) -> ApiKey:
    query = sa.select(api_keys).where(api_keys.c.key_id == key_id)
    row = conn.execute(query.with_for_update() if lock else query).one_or_none()
    if row is None:
        raise NotFoundError(f"no API key has the id {key_id!r}", key_id=key_id)
    return _key(row._mapping)


def _all_keys(conn: Connection) -> builtins.list[ApiKey]:
    rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.id)).all()
    return [_key(row._mapping) for row in rows]


def _key(row: Any) -> ApiKey:
    rate = row["rate_per_s"]
    return ApiKey(
        key_id=row["key_id"],
        scopes=tuple(row["scopes"]),
        models=tuple(row["models"]),
        description=row["description"],
        rate_per_s=None if rate is None else float(rate),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        created_by=row["created_by"],
        salt=row["salt"],
        digest=row["digest"],
    )


__all__ = ["SCOPES", "ApiKey", "KeyStore", "parse_key"]
