"""What one representation costs: size, metric on the hold-out, and speed through Predictor.

Latency is measured on :meth:`Predictor.predict_valid` (wrangling + model),
which is what serving and batch scoring run once rows are validated, so the
numbers compare representations rather than the validator.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from atoll.model.evaluate import evaluate, higher_is_better
from atoll.model.holdout import Labelled, holdout_file
from atoll.model.package import MANIFEST, listed_files, read_manifest
from atoll.model.predictor import Prediction, Predictor
from atoll.spec_compress import Target

MANY_ROWS = 10_000
ONE_ROW_REPEATS = 100
MANY_ROWS_REPEATS = 3
ARCHIVE_LEVEL = 10
"""The zstd level the artifact store compresses blobs with, so the archive size is what it holds."""


@dataclass(frozen=True)
class Measurement:
    """One representation's numbers; ``scores`` are its probabilities (or values) per row."""

    size_bytes: int
    model_bytes: int
    metrics: dict[str, float]
    scores: np.ndarray
    load_ms: float
    one_row_us: float
    many_rows_ms: float


def measure(
    directory: Path, rows: Labelled, target: Target, allow_imports: Sequence[str] = ()
) -> Measurement:
    """Load the package at ``directory`` and score the hold-out rows with it.

    One numeric thread, as each server worker runs: latency is per worker.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _measure(directory, rows, target, allow_imports)


def _measure(
    directory: Path, rows: Labelled, target: Target, allow_imports: Sequence[str]
) -> Measurement:
    loads: list[Predictor] = []
    load_ms = _best_s(lambda: loads.append(Predictor.open(directory, allow_imports)), 2) * 1e3
    predictor = loads[-1]
    prediction = predictor.predict_valid(rows.columns)
    scores = _scores(prediction)
    one = {name: values[:1] for name, values in rows.columns.items()}
    many = {name: np.resize(values, MANY_ROWS) for name, values in rows.columns.items()}
    return Measurement(
        size_bytes=package_size(directory, target),
        model_bytes=(directory / predictor.manifest["model"]["file"]).stat().st_size,
        metrics=_metrics(predictor, prediction, rows),
        scores=scores,
        load_ms=load_ms,
        one_row_us=_median_s(lambda: predictor.predict_valid(one), ONE_ROW_REPEATS) * 1e6,
        many_rows_ms=_best_s(lambda: predictor.predict_valid(many), MANY_ROWS_REPEATS) * 1e3,
    )


def package_size(directory: Path, target: Target) -> int:
    """Bytes of the package's files (manifest included), zstd-compressed for ``archive``.

    Hold-out rows are not counted: they are evaluation data, not the model,
    and a compressed child shares its parent's copy (one blob in the store),
    so counting them would only compare copies of the same rows.
    """
    manifest = read_manifest(directory)
    held_out = holdout_file(manifest)
    names = [MANIFEST, *(n for n in listed_files(manifest, str(directory)) if n != held_out)]
    if target == "serve":
        return sum((directory / name).stat().st_size for name in names)
    import zstandard

    compressor = zstandard.ZstdCompressor(level=ARCHIVE_LEVEL)
    return sum(len(compressor.compress((directory / name).read_bytes())) for name in names)


def metric_drop(metric: str, baseline: float, value: float) -> float:
    """How much worse ``value`` is than ``baseline`` (negative: better)."""
    return baseline - value if higher_is_better(metric) else value - baseline


def max_difference(task_is_classification: bool, baseline: np.ndarray, other: np.ndarray) -> float:
    """Largest change of any probability; for values, relative where they exceed 1 in size."""
    change = np.abs(other - baseline)
    if not task_is_classification:
        change = change / np.maximum(1.0, np.abs(baseline))
    return float(np.max(change)) if change.size else 0.0


def _scores(prediction: Prediction) -> np.ndarray:
    if prediction.probabilities is not None:
        return np.asarray(prediction.probabilities, dtype=np.float64)
    return np.asarray(prediction.predictions, dtype=np.float64)


def _metrics(predictor: Predictor, prediction: Prediction, rows: Labelled) -> dict[str, float]:
    proba = prediction.probabilities
    y_pred = np.argmax(proba, axis=1) if proba is not None else prediction.predictions
    report = evaluate(predictor.task.value, rows.y, y_pred, proba, predictor.classes)
    metrics: dict[str, float] = report["metrics"]
    return metrics


def _median_s(call: Callable[[], Any], repeats: int) -> float:
    call()  # the first call allocates and fills caches: not what a warm server sees
    return statistics.median(_timings(call, repeats))


def _best_s(call: Callable[[], Any], repeats: int) -> float:
    return min(_timings(call, repeats))


def _timings(call: Callable[[], Any], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times
