"""LightGBM models as LightGBM's own text format: plain data, no code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from atoll.errors import PackageError
from atoll.model.formats import BoosterScorer
from atoll.types import Task


def save(estimator: Any, path: Path) -> None:
    booster = getattr(estimator, "booster_", estimator)
    path.write_text(booster.model_to_string(), encoding="utf-8")


def load(path: Path, task: Task, trusted: list[str]) -> BoosterScorer:
    import lightgbm as lgb

    try:
        booster = lgb.Booster(model_str=path.read_text(encoding="utf-8"))
    except (lgb.basic.LightGBMError, UnicodeDecodeError) as exc:
        raise PackageError(f"{path.name} is not a LightGBM model: {exc}", file=str(path)) from None
    return BoosterScorer(booster.predict, task)
