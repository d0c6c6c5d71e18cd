"""LightGBM models as LightGBM's own text format: plain data, no code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from atoll.errors import PackageError
from atoll.model.formats import two_columns
from atoll.types import Task


@dataclass(frozen=True)
class BoosterScorer:
    booster: Any
    task: Task

    def scores(self, matrix: np.ndarray) -> np.ndarray:
        raw = np.asarray(self.booster.predict(matrix), dtype=np.float64)
        return two_columns(raw) if self.task is Task.BINARY else raw


def save(estimator: Any, path: Path) -> None:
    booster = getattr(estimator, "booster_", estimator)
    path.write_text(booster.model_to_string(), encoding="utf-8")


def load(path: Path, task: Task, trusted: list[str]) -> BoosterScorer:
    import lightgbm as lgb

    try:
        booster = lgb.Booster(model_str=path.read_text(encoding="utf-8"))
    except (lgb.basic.LightGBMError, UnicodeDecodeError) as exc:
        raise PackageError(f"{path.name} is not a LightGBM model: {exc}", file=str(path)) from None
    return BoosterScorer(booster, task)
