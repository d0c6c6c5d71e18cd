"""atoll: model engineering for tabular ML, from raw rows to a registered, verifiable model.

The public surface is small and loads lazily, so ``import atoll`` stays fast:

    >>> import atoll
    >>> outcome = atoll.train("atoll.yaml")          # doctest: +SKIP
    >>> predictor = atoll.load("credit-risk@production")  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atoll.api import load, train
    from atoll.errors import AtollError
    from atoll.model.predictor import Prediction, Predictor
    from atoll.spec import Spec, load_spec
    from atoll.types import ModelRef

__version__ = "0.1.0"

_EXPORTS = {
    "AtollError": "atoll.errors",
    "ModelRef": "atoll.types",
    "Prediction": "atoll.model.predictor",
    "Predictor": "atoll.model.predictor",
    "Spec": "atoll.spec",
    "load": "atoll.api",
    "load_spec": "atoll.spec",
    "train": "atoll.api",
}

__all__ = [
    "AtollError",
    "ModelRef",
    "Prediction",
    "Predictor",
    "Spec",
    "__version__",
    "load",
    "load_spec",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'atoll' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
