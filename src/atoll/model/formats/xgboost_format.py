"""XGBoost models as XGBoost's own JSON format: plain data, no code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from atoll.errors import PackageError
from atoll.model.formats import two_columns
from atoll.types import Task


@dataclass(frozen=True)
class XGBScorer:
    booster: Any
    task: Task

    def scores(self, matrix: np.ndarray) -> np.ndarray:
        raw = np.asarray(self.booster.inplace_predict(matrix), dtype=np.float64)
        return two_columns(raw) if self.task is Task.BINARY else raw


def save(estimator: Any, path: Path) -> None:
    booster = estimator.get_booster() if hasattr(estimator, "get_booster") else estimator
    booster.save_model(str(path))


def load(path: Path, task: Task, trusted: list[str]) -> XGBScorer:
    import xgboost as xgb

    booster = xgb.Booster()
    try:
        booster.load_model(str(path))
    except (xgb.core.XGBoostError, UnicodeDecodeError) as exc:
        raise PackageError(f"{path.name} is not an XGBoost model: {exc}", file=str(path)) from None
    return XGBScorer(booster, task)
