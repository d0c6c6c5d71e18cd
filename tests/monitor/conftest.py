"""Monitoring test fixtures: a synthetic reference, logged predictions, the store's engine."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from atoll import api
from atoll.data.profile import profile_frame, profile_predictions
from atoll.monitor.reference import Reference, column_reference
from atoll.settings import Settings
from atoll.store.predlog import LogRecord, PredictionLog
from tests.store.conftest import engine  # noqa: F401  (the store tests' migrated engine)

NUMERIC = [f"x{i}" for i in range(15)]
CATEGORICAL = [f"c{i}" for i in range(5)]
LEVELS = ["a", "b", "c", "d"]

if TYPE_CHECKING:
    from atoll.model.predictor import Prediction
    from atoll.store.registry import VersionInfo


def synthetic_frame(rows: int, seed: int) -> pd.DataFrame:
    """20 features: 15 normal numeric columns and 5 categorical ones with fixed shares."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {name: rng.normal(10.0, 2.0, rows) for name in NUMERIC}
    for name in CATEGORICAL:
        data[name] = rng.choice(LEVELS, rows, p=[0.4, 0.3, 0.2, 0.1])
    return pd.DataFrame(data)


def synthetic_reference(
    frame: pd.DataFrame, *, sensitive: tuple[str, ...] = (), task: str = "binary"
) -> Reference:
    """The reference of ``frame`` as a package would keep it (built by atoll.data.profile)."""
    kinds = {n: "numeric" for n in NUMERIC} | {n: "categorical" for n in CATEGORICAL}
    kinds |= {n: "categorical" for n in sensitive if n in frame.columns and n not in kinds}
    profile = profile_frame(frame, kinds)
    columns = {n: column_reference(p) for n, p in profile["columns"].items()}
    rng = np.random.default_rng(1)
    proba = rng.uniform(size=len(frame))
    scores = np.column_stack([1 - proba, proba])
    predictions = profile_predictions(task, (proba > 0.5).astype(int), scores, [0, 1])
    histogram = predictions["score_histogram"]["1"]
    prediction = column_reference(
        {
            "kind": "numeric",
            "bin_edges": histogram["bin_edges"],
            "bin_counts": histogram["bin_counts"],
            "min": 0.0,
            "max": 1.0,
            "std": None,
            "null_rate": 0.0,
        }
    )
    return Reference(
        model="synthetic",
        version=1,
        task=task,
        classes=[0, 1],
        columns={n: c for n, c in columns.items() if c is not None},
        skipped={},
        prediction=prediction,
        baseline={"roc_auc": 0.8, "accuracy": 0.75},
        sensitive=list(sensitive),
    )


def log_predictions(
    settings: Settings, version: VersionInfo, inputs: pd.DataFrame, at: datetime
) -> tuple[list[LogRecord], Prediction]:
    """Score ``inputs`` with ``version`` and write every answer to the prediction log at ``at``."""
    prediction = api.load(f"{version.name}@{version.version}", settings=settings).predict(inputs)
    records = [
        LogRecord(
            prediction_id=uuid.uuid4().hex,
            request_id="r",
            created_at=at,
            model=version.name,
            version=version.version,
            role="primary",
            inputs=row,
            outputs=output,
            latency_ms=3.0 + i % 7,
            key_id=None,
        )
        for i, (row, output) in enumerate(
            zip(inputs.to_dict("records"), prediction.to_records(), strict=True)
        )
    ]
    with api.open_registry(settings) as registry:
        log = PredictionLog(registry.engine, settings.project_dir / "spill", durability="strict")
        log.start()
        log.submit(records).result(timeout=60)
        log.close()
    return records, prediction
