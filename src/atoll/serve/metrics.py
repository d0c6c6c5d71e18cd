"""Prometheus metrics, right with one worker process or several.

With several workers each process keeps its own counters, so a scrape that
lands on one worker would see a fraction of the traffic. prometheus-client's
multiprocess mode fixes that: every process writes its values to memory-mapped
files in ``PROMETHEUS_MULTIPROC_DIR`` and :meth:`Metrics.render` sums the files
of every process. The server calls :func:`prepare_multiprocess_dir` once,
before it starts its workers (the directory must start empty: old files would
be summed too); each worker then builds one :class:`Metrics` (see
:func:`get_metrics`) and calls :meth:`Metrics.close` when it stops.

Route labels are route *templates* (``/v1/models/{name}/predict``), never raw
paths, so a client cannot create unbounded label values.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

from atoll import __version__

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The classic text format every Prometheus version reads (our names need no escaping)."""

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
BATCH_ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 10_000)
BATCH_WAIT_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip

LOG_OUTCOMES = ("written", "spilled", "replayed", "failed")


class Metrics:
    """Every ``atoll_`` instrument of one process.

    Build one per process (:func:`get_metrics`): in multiprocess mode two
    instances in one process would overwrite each other's values in the shared
    files. Without ``PROMETHEUS_MULTIPROC_DIR`` the instruments live in
    ``registry`` (a fresh one by default, so tests can build as many as they like).

    Attributes:
        multiprocess_dir: the directory of the per-process files, or None.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV) or None
        if self.multiprocess_dir is not None:
            _use_multiprocess_values()
            self.registry = None
        else:
            self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        self.http_requests = Counter(
            "atoll_http_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "code"],
            registry=reg,
        )
        self.http_duration = Histogram(
            "atoll_http_request_duration_seconds",
            "Time from the request's headers to the end of its response.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.predictions = Counter(
            "atoll_predictions",
            "Rows predicted, by model and version.",
            ["model", "version"],
            registry=reg,
        )
        self.prediction_errors = Counter(
            "atoll_prediction_errors",
            "Prediction requests that failed, by model and error code.",
            ["model", "code"],
            registry=reg,
        )
        self.batch_size = Histogram(
            "atoll_batch_size_rows",
            "Rows per predict call of the micro-batcher.",
            buckets=BATCH_ROW_BUCKETS,
            registry=reg,
        )
        self.batch_wait = Histogram(
            "atoll_batch_wait_seconds",
            "How long the first request of a batch waited for the batch to start.",
            buckets=BATCH_WAIT_BUCKETS,
            registry=reg,
        )
        self.queue_depth = Gauge(
            "atoll_queue_depth",
            "Requests waiting in the batching queue, by model (summed over live workers).",
            ["model"],
            multiprocess_mode="livesum",
            registry=reg,
        )
        self.log_records = Counter(
            "atoll_prediction_log_records",
            "Prediction log records by outcome: written to the store, spilled to disk, replayed,"
            " failed (refused by the table, or lost with the disk).",
            ["outcome"],
            registry=reg,
        )
        self.build_info = Gauge(
            "atoll_build_info",
            "Always 1; the label says which atoll version is serving.",
            ["version"],
            multiprocess_mode="max",
            registry=reg,
        )
        self.direct_requests = Counter(
            "atoll_http_direct_requests",
            "Prediction requests (native, V2, MLflow) the HTTP protocol answered itself,"
            " without the ASGI stack (also counted in atoll_http_requests_total).",
            registry=reg,
        )
        self.in_flight = Gauge(
            "atoll_in_flight_requests",
            "HTTP requests being answered now (summed over live workers).",
            multiprocess_mode="livesum",
            registry=reg,
        )
        self.build_info.labels(version=__version__).set(1)
        for outcome in LOG_OUTCOMES:  # present at 0 before the first record
            self.log_records.labels(outcome=outcome)
        # labels() takes a lock and builds a tuple; the hot path looks children up here
        self._request_children: dict[tuple[str, str, int], Any] = {}
        self._duration_children: dict[str, Any] = {}
        self._prediction_children: dict[tuple[str, int], Any] = {}

    def observe_request(self, route: str, method: str, code: int, seconds: float) -> None:
        """Count one answered request (called by the hardening middleware)."""
        key = (route, method, code)
        counter = self._request_children.get(key)
        if counter is None:
            counter = self.http_requests.labels(route=route, method=method, code=str(code))
            self._request_children[key] = counter
        counter.inc()
        histogram = self._duration_children.get(route)
        if histogram is None:
            histogram = self.http_duration.labels(route=route)
            self._duration_children[route] = histogram
        histogram.observe(seconds)

    def observe_prediction(self, model: str, version: int, rows: int) -> None:
        """Count the rows of one answered request (the service's ``on_prediction`` hook)."""
        key = (model, version)
        counter = self._prediction_children.get(key)
        if counter is None:
            counter = self.predictions.labels(model=model, version=str(version))
            self._prediction_children[key] = counter
        counter.inc(rows)

    def observe_batch(self, model: str, version: int, rows: int, wait_s: float) -> None:
        """Record one predict call of the batcher (the model set's ``on_batch`` hook)."""
        del model, version  # batch histograms are per process, not per model
        self.batch_size.observe(rows)
        self.batch_wait.observe(wait_s)

    def observe_error(self, model: str, code: str) -> None:
        """Count one failed prediction request by its problem code."""
        self.prediction_errors.labels(model=model, code=code).inc()

    def observe_log(self, outcome: str, records: int) -> None:
        """Count prediction-log records ``written``, ``spilled``, ``replayed`` or ``failed``."""
        if records:
            self.log_records.labels(outcome=outcome).inc(records)

    def set_queue_depth(self, model: str, depth: int) -> None:
        self.queue_depth.labels(model=model).set(depth)

    def render(self) -> tuple[bytes, str]:
        """The text exposition of every process's metrics: ``(body, content type)``."""
        if self.multiprocess_dir is None:
            assert self.registry is not None
            return generate_latest(self.registry), CONTENT_TYPE
        return render_directory(self.multiprocess_dir)

    def close(self) -> None:
        """Drop this process's live gauges (in-flight, queue depth) from the sums."""
        if self.multiprocess_dir is not None:
            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]


def render_directory(directory: str | Path) -> tuple[bytes, str]:
    """Sum the metric files every process wrote under ``directory``."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE


@functools.cache
def get_metrics() -> Metrics:
    """This process's one :class:`Metrics` (built on first use)."""
    return Metrics()


def render() -> tuple[bytes, str]:
    """The exposition of this process's (or, in multiprocess mode, every worker's) metrics."""
    return get_metrics().render()


def prepare_multiprocess_dir(
    directory: str | Path, environ: MutableMapping[str, str] | None = None
) -> Path:
    """Empty ``directory`` (creating it) and point ``PROMETHEUS_MULTIPROC_DIR`` at it.

    Call it in the server's parent process before any worker starts, so that
    workers inherit the variable and the sums start from zero.
    """
    path = Path(directory).absolute()
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    env = os.environ if environ is None else environ
    env[MULTIPROC_ENV] = str(path)
    return path


def _use_multiprocess_values() -> None:
    """Make new instruments write to the shared files.

    prometheus-client picks its value class once, when it is first imported;
    if that happened before ``PROMETHEUS_MULTIPROC_DIR`` was set (the server
    process imports the app before preparing the directory), instruments would
    silently count in memory and render() would miss them.
    """
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


__all__ = [
    "CONTENT_TYPE",
    "MULTIPROC_ENV",
    "Metrics",
    "get_metrics",
    "prepare_multiprocess_dir",
    "render",
    "render_directory",
]
