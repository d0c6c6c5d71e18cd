"""API keys over a real socket: 401 / 403 / 429, both headers, revocation, rate limits."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from atoll.errors import AtollError, StoreUnavailableError
from atoll.serve.auth import Authenticator, AuthSettings, TokenBucket
from atoll.serve.errors import Forbidden, TooManyRequests, Unauthorized, problem_for
from atoll.serve.limits import HardeningMiddleware
from atoll.spec_serve import ServeSpec
from atoll.store.keys import KeyStore

from .conftest import ServeInThread

ClientFor = Callable[[Authenticator], httpx.Client]
LENIENT = AuthSettings(auth_failures_per_min=10_000)


def problem_response(request: Request, error: Exception) -> Response:
    problem = problem_for(error)
    request_id = request.scope.get("state", {}).get("request_id", "")
    return JSONResponse(problem.body(request_id), problem.status, headers=problem.headers)


def auth_app(auth: Authenticator) -> ASGIApp:
    """Two routes guarded like the real ones, the key snapshot refreshed in the lifespan."""

    async def predict(request: Request) -> Response:
        key = auth.authorize_request(request, "predict", request.path_params["name"])
        return JSONResponse({"key_id": key.key_id if key else None})

    async def models(request: Request) -> Response:
        key = auth.authorize_request(request, "read")
        return JSONResponse({"key_id": key.key_id if key else None})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if auth.enabled:
            await asyncio.to_thread(auth.refresh)
        task = asyncio.create_task(auth.run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app = Starlette(
        routes=[
            Route("/v1/models/{name}/predict", predict, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ],
        exception_handlers={AtollError: problem_response},
        lifespan=lifespan,
    )
    return HardeningMiddleware(app)


@pytest.fixture
def client_for(serve_in_thread: ServeInThread) -> Iterator[ClientFor]:
    clients: list[httpx.Client] = []

    def make(auth: Authenticator) -> httpx.Client:
        client = httpx.Client(base_url=serve_in_thread(auth_app(auth)), timeout=10.0)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def predict(
    client: httpx.Client, model: str, key: str | None, header: str = "bearer"
) -> httpx.Response:
    headers = {}
    if key is not None:
        headers = {"Authorization": f"Bearer {key}"} if header == "bearer" else {"X-API-Key": key}
    return client.post(f"/v1/models/{model}/predict", headers=headers, content=b"{}")


def test_bearer_and_x_api_key_both_work(key_store: KeyStore, client_for: ClientFor) -> None:
    key, plaintext = key_store.create(["predict"], ["credit"])
    client = client_for(Authenticator(key_store, LENIENT))

    for header in ("bearer", "x-api-key"):
        response = predict(client, "credit", plaintext, header)
        assert response.status_code == 200, response.text
        assert response.json() == {"key_id": key.key_id}
    lower = client.post(
        "/v1/models/credit/predict", headers={"authorization": f"bearer {plaintext}"}, content=b"{}"
    )
    assert lower.status_code == 200


def test_every_bad_key_gets_the_same_401(key_store: KeyStore, client_for: ClientFor) -> None:
    good, plaintext = key_store.create(["predict"])
    revoked_key, revoked = key_store.create(["predict"])
    key_store.revoke(revoked_key.key_id)
    _, expired = key_store.create(["predict"], expires_in=timedelta(microseconds=1))
    secret = plaintext.split("_", 2)[2]
    wrong_secret = f"atoll_{good.key_id}_{secret[::-1]}"
    unknown_id = f"atoll_{'0' * 12}_{secret}"
    client = client_for(Authenticator(key_store, LENIENT))

    answers = [
        predict(client, "credit", None),
        predict(client, "credit", wrong_secret),
        predict(client, "credit", unknown_id, "x-api-key"),
        predict(client, "credit", "atoll_not-a-key"),
        predict(client, "credit", "x" * 5000),
        predict(client, "credit", revoked),
        predict(client, "credit", expired, "x-api-key"),
        client.post("/v1/models/credit/predict", headers={"Authorization": f"Basic {plaintext}"}),
        client.post("/v1/models/credit/predict", headers={"Authorization": "Bearer"}),
    ]

    bodies = set()
    for response in answers:
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"].startswith("Bearer")
        error = response.json()["error"]
        bodies.add((error["code"], error["message"]))
    assert bodies == {("unauthorized", "a valid API key is required")}
    assert predict(client, "credit", plaintext).status_code == 200


def test_wrong_scope_or_other_model_is_403(key_store: KeyStore, client_for: ClientFor) -> None:
    _, reader = key_store.create(["read"])
    _, credit_only = key_store.create(["predict"], ["credit"])
    _, admin = key_store.create(["admin"])
    _, any_model = key_store.create(["predict", "read"])
    client = client_for(Authenticator(key_store, LENIENT))

    scope_denied = predict(client, "credit", reader)
    assert scope_denied.status_code == 403
    assert scope_denied.json()["error"]["code"] == "forbidden"
    assert "predict" in scope_denied.json()["error"]["message"]
    model_denied = predict(client, "fraud", credit_only)
    assert model_denied.status_code == 403
    assert "fraud" in model_denied.json()["error"]["message"]

    assert predict(client, "credit", credit_only).status_code == 200
    assert predict(client, "fraud", admin).status_code == 200
    assert predict(client, "fraud", any_model).status_code == 200
    listing = client.get("/v1/models", headers={"X-API-Key": reader})
    assert listing.status_code == 200
    assert client.get("/v1/models", headers={"X-API-Key": credit_only}).status_code == 403


def test_revocation_is_seen_by_the_background_refresh(
    key_store: KeyStore, client_for: ClientFor
) -> None:
    key, plaintext = key_store.create(["predict"])
    settings = AuthSettings(refresh_interval_s=0.05, auth_failures_per_min=10_000)
    client = client_for(Authenticator(key_store, settings))
    assert predict(client, "credit", plaintext).status_code == 200

    key_store.revoke(key.key_id)

    deadline = time.monotonic() + 30.0  # generous: the refresh runs every 50 ms
    while predict(client, "credit", plaintext).status_code == 200:
        assert time.monotonic() < deadline, "the revoked key was never refused"
        time.sleep(0.02)
    assert predict(client, "credit", plaintext).status_code == 401


def test_refresh_sees_revocation_and_new_keys(key_store: KeyStore) -> None:
    key, plaintext = key_store.create(["predict"])
    auth = Authenticator(key_store, LENIENT)
    auth.refresh()
    headers = {"authorization": f"Bearer {plaintext}"}
    assert auth.authorize(headers, "10.0.0.1", "predict", "credit") == key

    key_store.revoke(key.key_id)
    assert auth.authorize(headers, "10.0.0.1", "predict", "credit") == key  # not yet re-read
    _, newer = key_store.create(["predict"])
    auth.refresh()

    with pytest.raises(Unauthorized):
        auth.authorize(headers, "10.0.0.1", "predict", "credit")
    assert auth.authorize({"x-api-key": newer}, "10.0.0.1", "predict", None) is not None


def test_a_remembered_key_still_expires_and_never_admits_another_secret(
    key_store: KeyStore,
) -> None:
    key, plaintext = key_store.create(["predict"], expires_in=timedelta(seconds=1))
    auth = Authenticator(key_store, LENIENT)
    auth.refresh()
    headers = {"authorization": f"Bearer {plaintext}"}
    assert auth.authorize(headers, "10.0.0.1", "predict", "credit") == key
    assert auth.authorize(headers, "10.0.0.1", "predict", "credit") == key  # remembered

    forged = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")  # same key id
    with pytest.raises(Unauthorized):
        auth.authorize({"authorization": f"Bearer {forged}"}, "10.0.0.1", "predict", "credit")

    assert key.expires_at is not None
    while datetime.now(UTC) < key.expires_at:  # no refresh in between: the snapshot is old
        time.sleep(0.05)
    with pytest.raises(Unauthorized):
        auth.authorize(headers, "10.0.0.1", "predict", "credit")


def test_rate_limit_is_per_key_with_an_integer_retry_after(
    key_store: KeyStore, client_for: ClientFor
) -> None:
    _, busy = key_store.create(["predict"])
    _, calm = key_store.create(["predict"])
    _, unlimited = key_store.create(["predict"], rate_per_s=0)
    # 0.1/s refills a token every 10 s: the third quick request is refused on any machine
    settings = AuthSettings(rate_per_s=0.1, burst=2, auth_failures_per_min=10_000)
    client = client_for(Authenticator(key_store, settings))

    assert [predict(client, "m", busy).status_code for _ in range(2)] == [200, 200]
    refused = predict(client, "m", busy)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    retry_after = refused.headers["retry-after"]
    assert retry_after.isdigit() and int(retry_after) >= 1

    assert predict(client, "m", calm).status_code == 200
    assert all(predict(client, "m", unlimited).status_code == 200 for _ in range(5))


def test_auth_failures_per_client_address_get_429(
    key_store: KeyStore, client_for: ClientFor
) -> None:
    _, plaintext = key_store.create(["predict"])
    client = client_for(Authenticator(key_store, AuthSettings(auth_failures_per_min=3)))

    statuses = [predict(client, "m", "atoll_wrong").status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    refused = predict(client, "m", "atoll_wrong")
    assert refused.status_code == 429
    assert refused.headers["retry-after"].isdigit()
    assert predict(client, "m", None).status_code == 429
    # a valid key is still served from that address (only failures are limited)
    assert predict(client, "m", plaintext).status_code == 200


def test_auth_off_lets_everyone_in(client_for: ClientFor) -> None:
    client = client_for(Authenticator(None, AuthSettings(enabled=False)))
    response = predict(client, "credit", None)
    assert response.status_code == 200
    assert response.json() == {"key_id": None}


def test_keys_not_loaded_yet_is_503(key_store: KeyStore) -> None:
    _, plaintext = key_store.create(["predict"])
    auth = Authenticator(key_store)
    with pytest.raises(StoreUnavailableError) as raised:
        auth.authorize({"x-api-key": plaintext}, "c", "predict", None)
    assert problem_for(raised.value).status == 503


def test_enabled_auth_needs_a_key_store() -> None:
    with pytest.raises(ValueError, match="key store"):
        Authenticator(None)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_per_key_rate_is_shared_among_workers(key_store: KeyStore) -> None:
    _, plaintext = key_store.create(["predict"])
    clock = FakeClock()
    settings = AuthSettings(rate_per_s=2, burst=4, worker_count=2)
    auth = Authenticator(key_store, settings, clock=clock)
    auth.refresh()
    headers = {"x-api-key": plaintext}

    auth.authorize(headers, "c", "predict", None)
    auth.authorize(headers, "c", "predict", None)
    with pytest.raises(TooManyRequests) as raised:  # burst 4 over 2 workers = 2 here
        auth.authorize(headers, "c", "predict", None)
    assert raised.value.headers["Retry-After"] == "1"
    clock.now += 1.0  # 2/s over 2 workers = 1/s here
    auth.authorize(headers, "c", "predict", None)


def test_forbidden_does_not_spend_the_rate(key_store: KeyStore) -> None:
    _, plaintext = key_store.create(["read"])
    auth = Authenticator(key_store, AuthSettings(rate_per_s=1, burst=1), clock=FakeClock())
    auth.refresh()
    for _ in range(3):
        with pytest.raises(Forbidden):
            auth.authorize({"x-api-key": plaintext}, "c", "predict", None)
    assert auth.authorize({"x-api-key": plaintext}, "c", "read", None) is not None


def test_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, capacity=3.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) == 0.0
    assert not bucket.idle(0.5)
    assert bucket.idle(100.0)
    assert bucket.take(100.0) == 0.0  # capped at capacity, not 200 tokens
    assert [bucket.take(100.0) for _ in range(3)][-1] > 0


def test_auth_settings_come_from_the_serve_spec() -> None:
    spec = ServeSpec.model_validate(
        {"auth": False, "rate_limit": {"per_key_per_s": 5, "burst": 9, "auth_failures_per_min": 4}}
    )
    settings = AuthSettings.from_spec(spec, worker_count=3)
    assert settings == AuthSettings(
        enabled=False, rate_per_s=5, burst=9, auth_failures_per_min=4, worker_count=3
    )
