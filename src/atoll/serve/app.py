"""``create_app``: the serving ASGI app of one worker, composed from routers.

The lifespan opens the registry, loads and verifies every served version,
starts the prediction-log writer, the key cache and the alias watcher; on
shutdown it drains the batch queues, then flushes the log, so a stopped
server loses nothing it acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from atoll.errors import AtollError, NotFoundError
from atoll.settings import Settings
from atoll.spec_serve import LogSpec, ServeSpec
from atoll.store.keys import KeyStore
from atoll.store.predlog import PredictionLog
from atoll.store.redact import PII_PEPPER_VARIABLE
from atoll.store.registry import Registry
from atoll.types import ModelRef

from . import routes_mlflow, routes_ops, routes_v1, routes_v2
from .access_log import ACCESS_LOGGER
from .auth import Authenticator, AuthSettings
from .docs import docs_routes
from .errors import Problem, envelope_json
from .hot_routes import ErrorHandler, HotRoutes
from .lane import LANE_STATE, PredictLane
from .limits import harden_from_spec
from .logframes import ProcessSettings
from .logship import LogProcess
from .memory import settle_memory
from .metrics import LOG_OUTCOMES, get_metrics
from .models import ModelSet
from .openapi import ModelDoc, build_openapi
from .recorder import Recorder
from .routes_v1 import json_response
from .server import Lifecycle
from .service import PredictService
from .state import JSON, ServerState, error_answer, request_id, server
from .threads import cores_per_worker

PRODUCTION = "production"
SPILL_DIR = "spill"


@dataclass(frozen=True)
class AppOptions:
    """What one worker needs to build its app (also sent to worker processes as JSON)."""

    settings: Settings
    refs: tuple[str, ...] = ()
    serve: ServeSpec = field(default_factory=ServeSpec)
    log: LogSpec = field(default_factory=LogSpec)
    workers: int = 1


def create_app(options: AppOptions, lifecycle: Lifecycle | None = None) -> ASGIApp:
    """The serving app: probes, /v1, /v2, MLflow routes, /metrics, OpenAPI and /docs."""
    routes: list[BaseRoute] = [
        *routes_ops.ROUTES,
        *routes_v1.ROUTES,
        *routes_v2.ROUTES,
        *routes_mlflow.ROUTES,
        *docs_routes(),
    ]
    # Starlette tries routes in order: the POST routes (predictions, feedback) carry nearly
    # all the traffic, so they are tried first. No two routes share a path, so order is free.
    routes.sort(key=lambda route: "POST" not in (getattr(route, "methods", None) or ()))
    app = Starlette(
        routes=routes,
        lifespan=lambda app: _lifespan(app, options, lifecycle or Lifecycle()),
        exception_handlers=dict(ERROR_HANDLERS),
    )
    app.add_route("/openapi.json", _openapi, methods=["GET"], include_in_schema=False)
    hot = [route for route in routes if isinstance(route, Route)]
    hardened = harden_from_spec(
        HotRoutes(app, hot, ERROR_HANDLERS),
        options.serve,
        metrics=get_metrics(),
        render_error=_render_error,
    )
    # the direct path, unless CORS is on (its headers are the CORS middleware's to add)
    app.state.lane = None if options.serve.cors_origins else PredictLane(hardened)
    return hardened


def _render_error(path: str, problem: Problem, request_id: str) -> tuple[bytes, str]:
    """Errors the hardening layer answers itself, in the route's protocol envelope."""
    return envelope_json(path, problem, request_id), JSON


async def _openapi(request: Request) -> Response:
    state = server(request)
    docs = [
        ModelDoc(
            slot.name,
            slot.current.version,
            slot.current.predictor.schema,
            slot.current.predictor.task,
            slot.current.predictor.classes,
            versions=tuple(v.version for v in slot.versions()),
        )
        for slot in state.models.slots.values()
    ]
    spec = state.spec
    document = build_openapi(
        docs,
        max_rows=spec.limits.max_rows,
        auth=spec.auth,
        unknown_columns=spec.unknown_columns,
    )
    return json_response(document)


async def _handle_error(request: Request, error: Exception) -> Response:
    model = request.path_params.get("name") if request.path_params else None
    state = getattr(request.app.state, "atoll", None)
    problem, body = error_answer(state, request.url.path, model, error, request_id(request))
    response = Response(body, problem.status, media_type=JSON)
    response.headers.update(problem.headers)
    return response


ERROR_HANDLERS: dict[type[Exception], ErrorHandler] = {
    AtollError: _handle_error,
    HTTPException: _handle_error,
    Exception: _handle_error,
}
"""How a route's error becomes a response, by class: Starlette's table and the hot routes'."""


@contextlib.asynccontextmanager
async def _lifespan(
    app: Starlette, options: AppOptions, lifecycle: Lifecycle
) -> AsyncIterator[dict[str, PredictLane]]:
    settings = options.settings
    registry = await asyncio.to_thread(Registry.from_settings, settings)
    state = await _build_state(registry, options)
    app.state.atoll = state
    lane: PredictLane | None = app.state.lane
    if lane is not None:
        lane.state = state
    settle_memory()
    lifecycle.listeners.append(state.start_draining)
    tasks = [
        asyncio.create_task(state.models.watch(), name="atoll-alias-watch"),
        asyncio.create_task(state.auth.run(), name="atoll-key-refresh"),
        asyncio.create_task(_count_log_records(state), name="atoll-log-metrics"),
        asyncio.create_task(_flush_access_log(), name="atoll-access-flush"),
    ]
    try:
        yield {LANE_STATE: lane} if lane is not None else {}  # uvicorn gives it to connections
    finally:
        state.draining = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await state.models.close()
        await state.service.close()
        await state.service.recorder.close()
        state.metrics.close()
        registry.close()
        for handler in logging.getLogger(ACCESS_LOGGER).handlers:
            handler.flush()


async def _flush_access_log(interval_s: float = 0.5) -> None:
    """Access lines are buffered (one write per request costs a system call): flush them."""
    handlers = logging.getLogger(ACCESS_LOGGER).handlers
    while True:
        await asyncio.sleep(interval_s)
        for handler in handlers:
            handler.flush()


async def _count_log_records(state: ServerState, interval_s: float = 1.0) -> None:
    """Publish the log writer's counters (written, spilled, replayed, failed) as metrics."""
    if state.log_stats is None:
        return
    seen = dict.fromkeys(LOG_OUTCOMES, 0)
    while True:
        await asyncio.sleep(interval_s)
        stats = state.log_stats
        for outcome, previous in seen.items():
            now = int(getattr(stats, outcome))
            state.metrics.observe_log(outcome, now - previous)
            seen[outcome] = now


async def _build_state(registry: Registry, options: AppOptions) -> ServerState:
    settings, spec = options.settings, options.serve
    metrics = get_metrics()

    def on_batch(model: str, version: int, rows: int, wait_s: float, depth: int) -> None:
        metrics.observe_batch(model, version, rows, wait_s)
        metrics.set_queue_depth(model, depth)

    cores = cores_per_worker(options.workers)
    models = ModelSet(registry, spec, settings.allow_imports, on_batch=on_batch, cores=cores)
    await models.load(await asyncio.to_thread(_served_refs, registry, options.refs))
    prediction_log = _prediction_log(registry, options)
    recorder = Recorder(
        prediction_log,
        options.log,
        settings.variable(PII_PEPPER_VARIABLE),
        _log_process(options, prediction_log) if prediction_log is not None else None,
    )
    await recorder.start()
    service = PredictService(models, recorder, spec, on_prediction=metrics.observe_prediction)
    auth = Authenticator(KeyStore(registry.engine), AuthSettings.from_spec(spec, options.workers))
    await asyncio.to_thread(auth.refresh)
    return ServerState(
        spec=spec,
        models=models,
        service=service,
        auth=auth,
        metrics=metrics,
    )


def _log_process(options: AppOptions, fallback: PredictionLog) -> LogProcess | None:
    """The log process of this worker, unless ``monitor.log.writer`` keeps the writer in it."""
    spec = options.log
    if spec.writer != "process":
        return None
    return LogProcess(
        ProcessSettings(
            db_url=options.settings.db_url,
            spill_dir=str(_spill_dir(options)),
            durability=spec.durability,
            flush_interval_s=spec.flush_ms / 1000,
            queue_size=spec.queue_size,
        ),
        fallback,
    )


def _spill_dir(options: AppOptions) -> Path:
    return options.settings.artifact_root.parent / SPILL_DIR


def _prediction_log(registry: Registry, options: AppOptions) -> PredictionLog | None:
    spec = options.log
    if not spec.enabled:
        return None
    spill = _spill_dir(options)
    writer = PredictionLog(
        registry.engine,
        spill,
        durability=spec.durability,
        flush_interval_s=spec.flush_ms / 1000,
        queue_size=spec.queue_size,
    )
    writer.start()
    return writer


def _served_refs(registry: Registry, refs: Sequence[str]) -> list[ModelRef]:
    """The references asked for, or every model with a ``production`` alias."""
    if refs:
        parsed = [ModelRef.parse(ref) for ref in refs]
        names = [ref.name for ref in parsed]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise AtollError(f"a model can be served once per server: {', '.join(duplicates)}")
        return parsed
    found = [
        ModelRef(info.name, alias=PRODUCTION)
        for info in registry.list_models()
        if PRODUCTION in info.aliases
    ]
    if not found:
        raise NotFoundError(
            "no model has a production alias: promote one, or name models with --model"
        )
    return found
