"""Prometheus metrics: route templates over a real socket, and sums over worker processes."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from atoll import __version__
from atoll.serve.limits import UNMATCHED_ROUTE, HardeningMiddleware
from atoll.serve.metrics import (
    MULTIPROC_ENV,
    Metrics,
    prepare_multiprocess_dir,
    render_directory,
)

from .conftest import ServeInThread

NAMED = (
    "atoll_http_requests",
    "atoll_http_request_duration_seconds",
    "atoll_predictions",
    "atoll_prediction_errors",
    "atoll_batch_size_rows",
    "atoll_batch_wait_seconds",
    "atoll_queue_depth",
    "atoll_prediction_log_records",
    "atoll_build_info",
    "atoll_in_flight_requests",
)
PREDICT = "/v1/models/{name}/predict"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def families(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


@pytest.fixture
def single_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    yield


def metrics_app(metrics: Metrics) -> HardeningMiddleware:
    async def model(request: Request) -> Response:
        return JSONResponse({"name": request.path_params["name"]})

    async def item(request: Request) -> Response:
        return JSONResponse({})

    async def scrape(request: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, headers={"content-type": content_type})

    app = Starlette(
        routes=[
            Route("/v1/models/{name}", model),
            Route(PREDICT, model, methods=["POST"]),
            Mount("/api", routes=[Route("/items/{item_id}", item)]),
            Route("/metrics", scrape),
        ]
    )
    return HardeningMiddleware(app, metrics=metrics)


@pytest.mark.usefixtures("single_process")
def test_requests_are_counted_by_route_template(serve_in_thread: ServeInThread) -> None:
    metrics = Metrics()
    with httpx.Client(base_url=serve_in_thread(metrics_app(metrics)), timeout=10.0) as web:
        web.get("/v1/models/credit")
        web.get("/v1/models/fraud")
        web.post("/v1/models/credit/predict")
        web.get("/api/items/7")
        web.get("/no/such/page")
        scraped = web.get("/metrics")
        again = web.get("/metrics")  # the first scrape is counted once it has ended

    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(again.text)
    total = "atoll_http_requests_total"
    assert value(found, total, route="/v1/models/{name}", method="GET", code="200") == 2
    assert value(found, total, route=PREDICT, method="POST", code="200") == 1
    assert value(found, total, route="/api/items/{item_id}", method="GET", code="200") == 1
    # /no/such/page, and the fixture's probe of / while waiting for the server
    assert value(found, total, route=UNMATCHED_ROUTE, method="GET", code="404") == 2
    assert value(found, total, route="/metrics", method="GET", code="200") == 1
    routes = {dict(labels).get("route") for _, labels in found}
    assert not routes & {"/v1/models/credit", "/v1/models/fraud", "/api/items/7", "/no/such/page"}
    duration = "atoll_http_request_duration_seconds_count"
    assert value(found, duration, route="/v1/models/{name}") == 2
    assert value(found, "atoll_in_flight_requests") == 1  # the scrape itself
    assert value(found, "atoll_build_info", version=__version__) == 1
    assert families(again.text) >= set(NAMED)


@pytest.mark.usefixtures("single_process")
def test_model_hooks_feed_the_prediction_metrics() -> None:
    metrics = Metrics()
    metrics.observe_prediction("credit", 3, 5)
    metrics.observe_prediction("credit", 3, 2)
    metrics.observe_batch("credit", 3, 7, 0.0015)
    metrics.observe_error("credit", "schema_violation")
    metrics.observe_log("written", 7)
    metrics.observe_log("spilled", 0)
    metrics.set_queue_depth("credit", 4)

    found = samples(metrics.render()[0].decode())

    assert value(found, "atoll_predictions_total", model="credit", version="3") == 7
    assert value(found, "atoll_batch_size_rows_sum") == 7
    assert value(found, "atoll_batch_wait_seconds_count") == 1
    errors = "atoll_prediction_errors_total"
    assert value(found, errors, model="credit", code="schema_violation") == 1
    assert value(found, "atoll_prediction_log_records_total", outcome="written") == 7
    assert value(found, "atoll_prediction_log_records_total", outcome="replayed") == 0
    assert value(found, "atoll_prediction_log_records_total", outcome="failed") == 0
    assert value(found, "atoll_queue_depth", model="credit") == 4


def count_in_worker(requests: int, rows: int, late_env: bool, close: bool) -> None:
    """One worker process: count, and maybe leave (close) before the scrape."""
    if late_env:  # prometheus_client imported before the server set the variable
        directory = os.environ.pop(MULTIPROC_ENV)
        import prometheus_client  # noqa: F401

        os.environ[MULTIPROC_ENV] = directory
    metrics = Metrics()
    for _ in range(requests):
        metrics.observe_request(PREDICT, "POST", 200, 0.002)
    metrics.observe_prediction("credit", 3, rows)
    metrics.observe_error("credit", "timeout")
    metrics.in_flight.inc()
    metrics.set_queue_depth("credit", 2)
    if close:
        metrics.close()


def render_in_worker(out: str) -> None:
    Path(out).write_bytes(Metrics().render()[0])


def run(target: Callable[..., None], *args: object) -> None:
    process = multiprocessing.get_context("spawn").Process(target=target, args=args)
    process.start()
    process.join(60)
    assert process.exitcode == 0


def test_multiprocess_render_sums_every_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environ: dict[str, str] = {}
    directory = prepare_multiprocess_dir(tmp_path / "metrics", environ)
    (directory / "stale.db").write_bytes(b"")
    directory = prepare_multiprocess_dir(tmp_path / "metrics", environ)  # starts empty
    assert list(directory.iterdir()) == []
    monkeypatch.setenv(MULTIPROC_ENV, environ[MULTIPROC_ENV])

    run(count_in_worker, 3, 10, False, False)
    run(count_in_worker, 4, 5, True, True)
    out = tmp_path / "scrape.txt"
    run(render_in_worker, str(out))

    for text in (out.read_text(), render_directory(directory)[0].decode()):
        found = samples(text)
        total = "atoll_http_requests_total"
        assert value(found, total, route=PREDICT, method="POST", code="200") == 7
        assert value(found, "atoll_http_request_duration_seconds_count", route=PREDICT) == 7
        assert value(found, "atoll_predictions_total", model="credit", version="3") == 15
        # live gauges: the worker that closed has left the sums
        assert value(found, "atoll_in_flight_requests") == 1
        assert value(found, "atoll_queue_depth", model="credit") == 2
        assert value(found, "atoll_build_info", version=__version__) == 1
        assert value(found, "atoll_prediction_errors_total", model="credit", code="timeout") == 2
        assert families(text) >= set(NAMED)
