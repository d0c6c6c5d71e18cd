"""The hot-route dispatcher over a real socket: same answers, errors and labels as Starlette's."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from atoll.errors import AtollError, NotFoundError
from atoll.serve.app import ERROR_HANDLERS
from atoll.serve.hot_routes import HotRoutes
from atoll.serve.limits import HardeningMiddleware

from .conftest import ServeInThread

PREDICT = "/v1/models/{name}/predict"


async def predict(request: Request) -> Response:
    name = request.path_params["name"]
    if name == "missing":
        raise NotFoundError(f"no model {name!r} is served here")
    if name == "broken":
        raise RuntimeError("secret internals")
    body = await request.body()
    route = request.scope["route"].path
    return JSONResponse({"name": name, "bytes": len(body), "route": route, "app": "starlette"})


async def metadata(request: Request) -> Response:
    return JSONResponse({"name": request.path_params["name"], "via": "starlette"})


def app_with_hot_routes() -> HardeningMiddleware:
    routes = [Route(PREDICT, predict, methods=["POST"]), Route("/v1/models/{name}", metadata)]
    starlette = Starlette(routes=routes)
    return HardeningMiddleware(HotRoutes(starlette, [routes[0]], ERROR_HANDLERS))


def test_a_hot_route_gets_its_path_params_route_and_body(serve_in_thread: ServeInThread) -> None:
    with httpx.Client(base_url=serve_in_thread(app_with_hot_routes()), timeout=10.0) as web:
        answer = web.post("/v1/models/credit/predict", content=b"x" * 10)
    assert answer.status_code == 200
    assert answer.json() == {"name": "credit", "bytes": 10, "route": PREDICT, "app": "starlette"}
    assert answer.headers["x-content-type-options"] == "nosniff"  # still inside the hardening


def test_other_requests_reach_starlette(serve_in_thread: ServeInThread) -> None:
    with httpx.Client(base_url=serve_in_thread(app_with_hot_routes()), timeout=10.0) as web:
        metadata = web.get("/v1/models/credit")
        wrong_method = web.get("/v1/models/credit/predict")
        unknown = web.post("/v1/models/credit/explain")
    assert metadata.json() == {"name": "credit", "via": "starlette"}
    assert wrong_method.status_code == 405
    assert unknown.status_code == 404


def test_handlers_without_one_for_exception_are_refused() -> None:
    with pytest.raises(ValueError, match="Exception"):
        HotRoutes(Starlette(), [], {AtollError: ERROR_HANDLERS[AtollError]})


def test_errors_of_a_hot_route_are_rendered_without_internals(
    serve_in_thread: ServeInThread, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="atoll.serve"),
        httpx.Client(base_url=serve_in_thread(app_with_hot_routes()), timeout=10.0) as web,
    ):
        missing = web.post("/v1/models/missing/predict")
        broken = web.post("/v1/models/broken/predict")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert broken.status_code == 500
    assert broken.json()["error"]["code"] == "internal_error"
    assert "secret" not in broken.text and "Traceback" not in broken.text
    logged = [r.getMessage() for r in caplog.records if r.name == "atoll.serve"]
    assert logged == ["unexpected error on /v1/models/broken/predict"]  # logged, once
