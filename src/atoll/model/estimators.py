"""Turn ``model.estimator`` + ``model.params`` into an unfitted estimator, safely.

The import path is resolved only against an allow-list of module prefixes
(scikit-learn, LightGBM, XGBoost by default; a spec may add its own through
``allow_imports``), because importing a name from a config file runs code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from atoll import _imports
from atoll.errors import SpecError
from atoll.types import Task

if TYPE_CHECKING:
    from atoll.spec import Spec

DEFAULT_PREFIXES = ("sklearn", "lightgbm", "xgboost")
_QUIET_DEFAULTS = {"lightgbm": {"verbosity": -1}, "xgboost": {"verbosity": 0}}
"""LightGBM and XGBoost chatter on stdout unless told not to; the spec may override."""


def build_estimator(spec: Spec) -> Any:
    """Construct the estimator the spec names, with its params, ready to fit."""
    path = spec.model.estimator
    prefixes = [*DEFAULT_PREFIXES, *spec.allow_imports]
    factory = _imports.resolve(path, prefixes, "model.estimator")
    if not callable(factory):
        raise _spec_error("model.estimator", f"{path!r} is not a class or factory")
    params = {**_QUIET_DEFAULTS.get(path.split(".")[0], {}), **spec.model.params}
    try:
        estimator = factory(**params)
    except (TypeError, ValueError) as exc:
        raise _spec_error("model.params", f"{path} does not accept these params: {exc}") from exc
    _check_capabilities(estimator, spec.task, path)
    return estimator


def _check_capabilities(estimator: Any, task: Task, path: str) -> None:
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict")):
        raise _spec_error("model.estimator", f"{path} has no fit/predict methods")
    if task.is_classification and not hasattr(estimator, "predict_proba"):
        raise _spec_error(
            "model.estimator", f"{path} cannot give class probabilities (no predict_proba)"
        )


def _spec_error(field: str, message: str) -> SpecError:
    return SpecError(f"{field}: {message}", problems=[(field, None, message)])
