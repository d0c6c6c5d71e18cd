"""On-disk model formats: one module per format, none of which unpickles.

Each format module offers ``save(estimator, path)`` and
``load(path, task, trusted) -> Scorer``. A :class:`Scorer` answers with class
probabilities (classification) or values (regression) for a float matrix;
everything else about prediction lives in :mod:`atoll.model.predictor`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from atoll._extras import require
from atoll.errors import PackageError
from atoll.types import Task

FORMATS = {
    "skops": ("atoll.model.formats.skops_format", "model.skops"),
    "lightgbm": ("atoll.model.formats.lightgbm_format", "model.lgb.txt"),
    "xgboost": ("atoll.model.formats.xgboost_format", "model.xgb.json"),
    "onnx": ("atoll.model.formats.onnx_format", "model.onnx"),
}
"""Format name -> (module, file name inside the package)."""

_LIBRARIES = {
    "skops": ("sklearn", "skops"),
    "lightgbm": ("lightgbm",),
    "xgboost": ("xgboost",),
    "onnx": ("onnxruntime",),
}
"""Format name -> the libraries it needs (each checked before use: the lean install lacks most)."""


class Scorer(Protocol):
    """A loaded model: probabilities (n, k) for classifiers, values (n,) for regression."""

    def scores(self, matrix: np.ndarray) -> np.ndarray: ...


def format_for(estimator: Any) -> str:
    """Pick the native format for an estimator: its library's own, else skops."""
    library = type(estimator).__module__.split(".")[0]
    return library if library in ("lightgbm", "xgboost") else "skops"


def save(estimator: Any, directory: Path) -> tuple[str, str]:
    """Write the fitted estimator into ``directory``; return (format, file name)."""
    name = format_for(estimator)
    _module_name, file_name = FORMATS[name]
    _module(name).save(estimator, directory / file_name)
    return name, file_name


def load(name: str, path: Path, task: Task, trusted: list[str]) -> Scorer:
    """Load a model file in format ``name``; ``trusted`` extends the allowed type prefixes."""
    if name not in FORMATS:
        raise PackageError(f"unknown model format {name!r} (known: {', '.join(FORMATS)})")
    scorer: Scorer = _module(name).load(path, task, trusted)
    return scorer


def _module(name: str) -> Any:
    """The format's module, once its libraries are known to be installed.

    Raises:
        MissingDependencyError: naming the extra that brings a missing library
            (e.g. a LightGBM package served by the lean ``atoll[serve-lite]``).
    """
    require(*_LIBRARIES[name])
    return importlib.import_module(FORMATS[name][0])


@dataclass(frozen=True)
class BoosterScorer:
    """A gradient-boosting booster (LightGBM, XGBoost) behind the Scorer protocol.

    Boosters answer a binary task with the positive class's probability only;
    it is widened to both columns here, once, for every booster library.
    """

    predict: Callable[[np.ndarray], Any]
    task: Task

    def scores(self, matrix: np.ndarray) -> np.ndarray:
        raw = np.asarray(self.predict(matrix), dtype=np.float64)
        if self.task is not Task.BINARY:
            return raw
        positive = raw.reshape(-1)
        return np.column_stack([1.0 - positive, positive])
