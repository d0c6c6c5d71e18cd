from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
import sqlalchemy as sa

from atoll.errors import NotFoundError, RegistryError
from atoll.store.db import create_engine_for
from atoll.store.keys import SCOPES, KeyStore, parse_key
from atoll.store.tables import utcnow
from atoll.types import InvalidNameError


@pytest.fixture
def keys(engine: sa.Engine) -> KeyStore:
    return KeyStore(engine, actor="tester")


def dump(engine: sa.Engine, table: str) -> str:
    with engine.connect() as conn:
        return repr(conn.exec_driver_sql(f"SELECT * FROM {table}").all())


def test_create_returns_the_plaintext_once_and_stores_only_a_salted_digest(
    keys: KeyStore, engine: sa.Engine
) -> None:
    key, plaintext = keys.create(["predict"], ["credit-risk"], description="web shop")
    parsed = parse_key(plaintext)
    assert parsed is not None
    key_id, secret = parsed
    assert key_id == key.key_id and len(key_id) == 12
    assert plaintext == f"atoll_{key_id}_{secret}"
    assert key.digest == hashlib.sha256(bytes.fromhex(key.salt) + secret.encode()).hexdigest()
    assert len(key.salt) == 32
    for table in ("api_keys", "audit"):
        stored = dump(engine, table)
        assert secret not in stored and plaintext not in stored
    assert secret not in repr(key) and key.digest not in repr(key)
    assert key.matches(secret)
    assert not key.matches(secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    assert key.scopes == ("predict",) and key.models == ("credit-risk",)
    assert key.created_by == "tester" and key.description == "web shop"


def test_the_same_secret_gets_a_different_salt_and_digest_per_key(keys: KeyStore) -> None:
    first, _ = keys.create(["read"])
    second, _ = keys.create(["read"])
    assert first.key_id != second.key_id
    assert first.salt != second.salt and first.digest != second.digest


def test_list_snapshot_and_revoke(keys: KeyStore, engine: sa.Engine) -> None:
    a, _ = keys.create(["predict"])
    b, _ = keys.create(["feedback", "read"], rate_per_s=5)
    revoked = keys.revoke(a.key_id)
    assert revoked.revoked_at is not None and not revoked.active(utcnow())
    again = keys.revoke(a.key_id)  # idempotent: the first revocation time stays
    assert again.revoked_at == revoked.revoked_at
    assert [k.key_id for k in keys.list()] == [a.key_id, b.key_id]
    assert [k.key_id for k in keys.list(include_revoked=False)] == [b.key_id]
    other = create_engine_for(engine.url.render_as_string(hide_password=False))
    try:  # another server process sees the revocation on its next refresh
        snapshot = KeyStore(other).snapshot()
    finally:
        other.dispose()
    assert set(snapshot) == {a.key_id, b.key_id}
    assert snapshot[a.key_id].revoked_at is not None and snapshot[b.key_id].rate_per_s == 5.0
    with engine.connect() as conn:
        actions = conn.execute(sa.text("SELECT action, actor FROM audit ORDER BY id")).all()
    assert [tuple(row) for row in actions] == [
        ("create_key", "tester"),
        ("create_key", "tester"),
        ("revoke_key", "tester"),
    ]


def test_revoking_an_unknown_key_is_not_found(keys: KeyStore) -> None:
    with pytest.raises(NotFoundError, match="0123456789ab"):
        keys.revoke("0123456789ab")


def test_expiry(keys: KeyStore) -> None:
    key, _ = keys.create(["predict"], expires_in=timedelta(days=30))
    assert key.expires_at is not None
    assert key.expires_at - key.created_at == timedelta(days=30)
    assert key.active(utcnow())
    assert not key.active(key.expires_at)
    assert not key.active(key.expires_at + timedelta(seconds=1))
    forever, _ = keys.create(["predict"])
    assert forever.expires_at is None and forever.active(utcnow() + timedelta(days=3650))
    with pytest.raises(RegistryError, match="positive"):
        keys.create(["predict"], expires_in=timedelta(0))


def test_unknown_scope_names_it_and_the_valid_ones(keys: KeyStore) -> None:
    with pytest.raises(RegistryError) as info:
        keys.create(["predict", "delete"])
    message = str(info.value)
    assert "'delete'" in message
    assert all(scope in message for scope in SCOPES)
    with pytest.raises(RegistryError, match="at least one scope"):
        keys.create([])
    assert keys.list() == []


def test_scopes_and_models(keys: KeyStore) -> None:
    predictor, _ = keys.create(["predict"], ["credit-risk", "churn"])
    assert predictor.allows("predict", "credit-risk") and predictor.allows("predict", "churn")
    assert not predictor.allows("predict", "fraud")
    assert not predictor.allows("read", "credit-risk") and not predictor.allows("admin", None)
    assert predictor.allows("predict", None)  # a request about no one model
    admin, _ = keys.create(["admin"])
    assert all(admin.allows(scope, "anything") for scope in SCOPES)
    reader, _ = keys.create(["read", "read"])
    assert reader.scopes == ("read",) and reader.models == ()
    with pytest.raises(InvalidNameError):
        keys.create(["predict"], ["../etc"])


@pytest.mark.parametrize("rate", [-1.0, float("nan"), float("inf")])
def test_bad_rates_are_refused(keys: KeyStore, rate: float) -> None:
    with pytest.raises(RegistryError, match="rate"):
        keys.create(["predict"], rate_per_s=rate)


def test_zero_rate_means_unlimited_and_none_the_default(keys: KeyStore) -> None:
    unlimited, _ = keys.create(["predict"], rate_per_s=0)
    default, _ = keys.create(["predict"])
    assert unlimited.rate_per_s == 0.0 and default.rate_per_s is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "atoll_",
        "atoll_0123456789ab",
        "atoll_0123456789AB_" + "a" * 43,  # upper-case hex
        "atoll_0123456789ab_" + "a" * 42,
        "atoll_0123456789ab_" + "a" * 44,
        "atoll_0123456789ab_" + "a" * 42 + "=",
        "token_0123456789ab_" + "a" * 43,
        "atoll_0123456789ab_" + "a" * 43 + "\n",
        "x" * 10_000,
    ],
)
def test_parse_key_refuses_malformed_keys(text: str) -> None:
    assert parse_key(text) is None


def test_parse_key_accepts_secrets_with_underscores_and_dashes() -> None:
    secret = "a_b-" * 10 + "xyz"
    assert parse_key(f"atoll_0123456789ab_{secret}") == ("0123456789ab", secret)
