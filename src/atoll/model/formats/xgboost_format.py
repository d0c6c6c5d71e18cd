"""XGBoost models as XGBoost's own JSON format: plain data, no code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from atoll.errors import PackageError
from atoll.model.formats import BoosterScorer
from atoll.types import Task


def save(estimator: Any, path: Path) -> None:
    booster = estimator.get_booster() if hasattr(estimator, "get_booster") else estimator
    booster.save_model(str(path))


def load(path: Path, task: Task, trusted: list[str]) -> BoosterScorer:
    import xgboost as xgb

    booster = xgb.Booster()
    try:
        booster.load_model(str(path))
    except (xgb.core.XGBoostError, UnicodeDecodeError) as exc:
        raise PackageError(f"{path.name} is not an XGBoost model: {exc}", file=str(path)) from None
    return BoosterScorer(booster.inplace_predict, task)
