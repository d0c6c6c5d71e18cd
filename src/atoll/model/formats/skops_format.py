"""scikit-learn models in skops format: loaded without running pickle.

skops lists the types a file would construct; atoll refuses the file unless
every one of them lies under a trusted module prefix.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from atoll import _imports
from atoll.errors import PackageError
from atoll.types import Task

# Not "builtins": skops already trusts the builtin containers and scalars itself, so
# that prefix would only add functions such as builtins.eval, exec and __import__.
TRUSTED_PREFIXES = ("sklearn", "numpy", "scipy", "collections", "lightgbm", "xgboost")


@dataclass(frozen=True)
class SklearnScorer:
    """A fitted scikit-learn estimator trained on class indices 0..k-1."""

    estimator: Any
    task: Task

    def scores(self, matrix: np.ndarray) -> np.ndarray:
        if self.task.is_classification:
            return np.asarray(self.estimator.predict_proba(matrix), dtype=np.float64)
        return np.asarray(self.estimator.predict(matrix), dtype=np.float64).reshape(-1)


def _is_class(name: str) -> bool:
    """Only classes are trusted, never functions: skops calls what it reconstructs.

    A module prefix alone would admit any function of a trusted library (some
    run code they are given); a class is only instantiated and given state.
    """
    module_name, _, attribute = name.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError):
        return False
    return isinstance(found, type)


def save(estimator: Any, path: Path) -> None:
    import skops.io as sio

    sio.dump(estimator, path)


def load(path: Path, task: Task, trusted: list[str]) -> SklearnScorer:
    import skops.io as sio

    prefixes = [*TRUSTED_PREFIXES, *trusted]
    try:
        types = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises a zoo of types on a malformed file
        raise PackageError(
            f"{path.name} is not a valid skops file: {exc}", file=str(path)
        ) from None
    refused = [t for t in types if not (_imports.is_allowed(t, prefixes) and _is_class(t))]
    if refused:
        raise PackageError(
            f"{path.name} would construct untrusted types: {', '.join(refused)}", file=str(path)
        )
    return SklearnScorer(sio.load(path, trusted=types), task)
