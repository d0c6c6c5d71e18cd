"""Building the estimator a spec names: only from allow-listed modules, with its params."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression

from atoll.errors import SpecError
from atoll.model.estimators import build_estimator
from atoll.spec import Spec

HERE = __name__


class TinyClassifier:
    """A user-defined classifier: predicts the majority class with its frequency."""

    def __init__(self, smoothing: float = 0.0) -> None:
        self.smoothing = smoothing

    def fit(self, x: np.ndarray, y: np.ndarray) -> TinyClassifier:
        counts = np.bincount(y) + self.smoothing
        self.proba_ = counts / counts.sum()
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.tile(self.proba_, (len(x), 1))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(np.argmax(self.predict_proba(x), axis=1))


class TinyRegressor:
    """Predicts the mean; it has no predict_proba."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> TinyRegressor:
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.full(len(x), self.mean_)


class NoFit:
    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.zeros(len(x))


NOT_CALLABLE = 42


def _spec(
    estimator: str,
    params: dict[str, Any] | None = None,
    *,
    task: str = "binary",
    allow_imports: list[str] | None = None,
) -> Spec:
    return Spec.model_validate(
        {
            "name": "tiny",
            "task": task,
            "target": "y",
            "data": {"path": "data.csv"},
            "columns": {"x": {"type": "float"}, "y": {"type": "int"}},
            "model": {"estimator": estimator, "params": params or {}},
            "allow_imports": allow_imports or [],
        }
    )


def _fields(error: SpecError) -> list[str]:
    return [field for field, _line, _text in error.problems]


def test_an_allow_listed_sklearn_estimator_is_built_with_its_params() -> None:
    built = build_estimator(
        _spec("sklearn.linear_model.LogisticRegression", {"C": 0.5, "max_iter": 50})
    )
    assert type(built) is LogisticRegression
    assert built.get_params()["C"] == 0.5
    assert built.get_params()["max_iter"] == 50
    assert not hasattr(built, "coef_")  # unfitted


def test_each_call_builds_a_fresh_estimator() -> None:
    spec = _spec("sklearn.ensemble.HistGradientBoostingClassifier", {"max_iter": 7})
    first, second = build_estimator(spec), build_estimator(spec)
    assert type(first) is HistGradientBoostingClassifier
    assert first is not second
    assert first.get_params()["max_iter"] == 7


def test_lightgbm_is_quiet_by_default() -> None:
    built = build_estimator(_spec("lightgbm.LGBMClassifier", {"n_estimators": 5}))
    assert type(built) is lgb.LGBMClassifier
    assert built.get_params()["verbosity"] == -1
    assert built.get_params()["n_estimators"] == 5


def test_the_spec_can_override_lightgbm_verbosity() -> None:
    built = build_estimator(_spec("lightgbm.LGBMClassifier", {"verbosity": 1}))
    assert built.get_params()["verbosity"] == 1


def test_xgboost_is_quiet_by_default_and_builds_a_regressor() -> None:
    built = build_estimator(_spec("xgboost.XGBRegressor", {"max_depth": 2}, task="regression"))
    assert type(built) is xgb.XGBRegressor
    assert built.get_params()["verbosity"] == 0
    assert built.get_params()["max_depth"] == 2


def test_sklearn_estimators_get_no_injected_params() -> None:
    built = build_estimator(_spec("sklearn.linear_model.LinearRegression", task="regression"))
    assert type(built) is LinearRegression
    assert built.get_params() == LinearRegression().get_params()


@pytest.mark.parametrize(
    "path",
    [
        "os.system",
        "subprocess.Popen",
        "builtins.eval",
        "LogisticRegression",
        "sklearnx.linear_model.LogisticRegression",
        f"{HERE}.TinyClassifier",
    ],
)
def test_paths_outside_the_allow_list_are_refused(path: str) -> None:
    with pytest.raises(SpecError, match=r"^model\.estimator: .*not allowed") as caught:
        build_estimator(_spec(path))
    assert _fields(caught.value) == ["model.estimator"]
    assert repr(path) in str(caught.value)


@pytest.mark.parametrize(
    "path", ["sklearn.linear_model.NoSuchModel", "sklearn.no_such_module.Model"]
)
def test_an_allowed_path_that_does_not_import_is_refused(path: str) -> None:
    with pytest.raises(SpecError, match=r"^model\.estimator: cannot import") as caught:
        build_estimator(_spec(path))
    assert _fields(caught.value) == ["model.estimator"]


def test_allow_imports_extends_the_allow_list() -> None:
    built = build_estimator(
        _spec(f"{HERE}.TinyClassifier", {"smoothing": 1.0}, allow_imports=["tests.model"])
    )
    assert isinstance(built, TinyClassifier)
    assert built.smoothing == 1.0
    fitted = built.fit(np.zeros((4, 1)), np.array([0, 0, 0, 1]))
    np.testing.assert_allclose(fitted.predict_proba(np.zeros((1, 1))), [[4 / 6, 2 / 6]])


def test_allow_imports_does_not_trust_sibling_modules() -> None:
    with pytest.raises(SpecError, match="not allowed"):
        build_estimator(_spec(f"{HERE}.TinyClassifier", allow_imports=["tests.mod"]))


@pytest.mark.parametrize(
    ("estimator", "params"),
    [
        ("sklearn.linear_model.LogisticRegression", {"no_such_param": 1}),
        (f"{HERE}.TinyClassifier", {"smoothing": 1.0, "depth": 3}),
    ],
)
def test_params_the_estimator_does_not_accept_are_refused(
    estimator: str, params: dict[str, Any]
) -> None:
    with pytest.raises(SpecError) as caught:
        build_estimator(_spec(estimator, params, allow_imports=[HERE]))
    assert _fields(caught.value) == ["model.params"]
    assert str(caught.value).startswith(f"model.params: {estimator} does not accept these params")


def test_a_regressor_cannot_serve_a_classification_task() -> None:
    with pytest.raises(SpecError, match="no predict_proba") as caught:
        build_estimator(_spec("sklearn.linear_model.LinearRegression", task="binary"))
    assert _fields(caught.value) == ["model.estimator"]


def test_a_user_regressor_cannot_serve_a_multiclass_task_but_can_do_regression() -> None:
    path = f"{HERE}.TinyRegressor"
    with pytest.raises(SpecError, match="cannot give class probabilities"):
        build_estimator(_spec(path, task="multiclass", allow_imports=[HERE]))
    assert isinstance(
        build_estimator(_spec(path, task="regression", allow_imports=[HERE])), TinyRegressor
    )


def test_an_object_without_fit_is_refused() -> None:
    with pytest.raises(SpecError, match="has no fit/predict methods") as caught:
        build_estimator(_spec(f"{HERE}.NoFit", task="regression", allow_imports=[HERE]))
    assert _fields(caught.value) == ["model.estimator"]


def test_a_name_that_is_not_callable_is_refused() -> None:
    with pytest.raises(SpecError, match="is not a class or factory") as caught:
        build_estimator(_spec(f"{HERE}.NOT_CALLABLE", allow_imports=[HERE]))
    assert _fields(caught.value) == ["model.estimator"]
