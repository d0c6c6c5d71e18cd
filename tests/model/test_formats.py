"""Model file formats: exact round trips, and nothing in a file ever runs code on load."""

from __future__ import annotations

import functools
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
import skops.io as sio
import xgboost as xgb
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from atoll.errors import PackageError
from atoll.model import formats
from atoll.model.formats import skops_format
from atoll.types import Task

N_ROWS = 240


def _features(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(N_ROWS, 4))


def _target(task: Task, x: np.ndarray) -> np.ndarray:
    signal = x[:, 0] + 0.5 * x[:, 1]
    if task is Task.BINARY:
        return (signal > 0).astype(np.int64)
    if task is Task.MULTICLASS:
        return np.digitize(signal, [-0.5, 0.5]).astype(np.int64)
    return np.asarray(3.0 * signal + x[:, 2], dtype=np.float64)


def _expected(estimator: Any, task: Task, x: np.ndarray) -> np.ndarray:
    if task.is_classification:
        return np.asarray(estimator.predict_proba(x), dtype=np.float64)
    return np.asarray(estimator.predict(x), dtype=np.float64)


CLASSIFIERS: dict[str, Callable[[], Any]] = {
    "hist_gb": lambda: HistGradientBoostingClassifier(max_iter=15, random_state=0),
    "logistic": lambda: LogisticRegression(max_iter=500),
    "random_forest": lambda: RandomForestClassifier(n_estimators=8, random_state=0),
    "lgbm": lambda: lgb.LGBMClassifier(n_estimators=15, num_leaves=7, verbosity=-1),
    "xgb": lambda: xgb.XGBClassifier(n_estimators=15, max_depth=3, verbosity=0),
}
REGRESSORS: dict[str, Callable[[], Any]] = {
    "hist_gb": lambda: HistGradientBoostingRegressor(max_iter=15, random_state=0),
    "ridge": lambda: Ridge(),
    "random_forest": lambda: RandomForestRegressor(n_estimators=8, random_state=0),
    "lgbm": lambda: lgb.LGBMRegressor(n_estimators=15, num_leaves=7, verbosity=-1),
    "xgb": lambda: xgb.XGBRegressor(n_estimators=15, max_depth=3, verbosity=0),
}
EXPECTED_FORMAT = {"lgbm": "lightgbm", "xgb": "xgboost"}
CASES = [
    *((name, task) for name in CLASSIFIERS for task in (Task.BINARY, Task.MULTICLASS)),
    *((name, Task.REGRESSION) for name in REGRESSORS),
]


@pytest.mark.parametrize(("name", "task"), CASES, ids=[f"{n}-{t.value}" for n, t in CASES])
def test_save_then_load_scores_exactly_like_the_fitted_estimator(
    tmp_path: Path, name: str, task: Task
) -> None:
    factory = REGRESSORS[name] if task is Task.REGRESSION else CLASSIFIERS[name]
    x_train, x_new = _features(0), _features(1)
    estimator = factory().fit(x_train, _target(task, x_train))

    model_format, file_name = formats.save(estimator, tmp_path)
    scores = formats.load(model_format, tmp_path / file_name, task, []).scores(x_new)

    assert model_format == EXPECTED_FORMAT.get(name, "skops")
    assert file_name == formats.FORMATS[model_format][1]
    assert sorted(p.name for p in tmp_path.iterdir()) == [file_name]
    expected = _expected(estimator, task, x_new)
    if task.is_classification:
        k = 2 if task is Task.BINARY else 3
        assert scores.shape == (N_ROWS, k)
        np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=0, atol=1e-6)  # xgb: float32
    else:
        assert scores.shape == (N_ROWS,)
    if task is Task.BINARY and name == "xgb":
        # XGBoost forms the negative column as 1 - p in float32, atoll in float64:
        # the model's own output (the positive column) must still match exactly.
        np.testing.assert_allclose(scores[:, 1], expected[:, 1], rtol=0, atol=1e-12)
        np.testing.assert_allclose(scores[:, 0], expected[:, 0], rtol=0, atol=1e-7)
    else:
        np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-12)


def test_format_for_picks_the_native_format_of_each_library() -> None:
    assert formats.format_for(lgb.LGBMClassifier()) == "lightgbm"
    assert formats.format_for(xgb.XGBRegressor()) == "xgboost"
    assert formats.format_for(LogisticRegression()) == "skops"


def test_a_booster_widens_binary_positive_probabilities_to_both_classes() -> None:
    def positive(matrix: np.ndarray) -> np.ndarray:
        return np.array([0.25, 1.0, 0.0])

    out = formats.BoosterScorer(positive, Task.BINARY).scores(np.zeros((3, 1)))
    np.testing.assert_array_equal(out, [[0.75, 0.25], [0.0, 1.0], [1.0, 0.0]])
    raw = formats.BoosterScorer(positive, Task.REGRESSION).scores(np.zeros((3, 1)))
    np.testing.assert_array_equal(raw, [0.25, 1.0, 0.0])


def test_an_unknown_format_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(b"\x80\x04")
    with pytest.raises(PackageError, match=r"unknown model format 'pickle'.*skops.*onnx"):
        formats.load("pickle", path, Task.BINARY, [])


# --- skops: only trusted types are ever constructed ------------------------------------


class Marker:
    """A type outside every trusted prefix; constructing it from a file leaves a file behind."""

    def __init__(self, flag: str) -> None:
        self.flag = flag

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        Path(state["flag"]).touch()


MARKER_TYPE = f"{__name__}.Marker"


def test_a_skops_file_with_an_untrusted_type_is_refused_before_loading(tmp_path: Path) -> None:
    flag = tmp_path / "constructed"
    path = tmp_path / "model.skops"
    sio.dump(Marker(str(flag)), path)

    with pytest.raises(PackageError, match="untrusted types") as caught:
        formats.load("skops", path, Task.BINARY, [])

    assert MARKER_TYPE in str(caught.value)
    assert caught.value.context["file"] == str(path)
    assert not flag.exists()


def test_a_trusted_prefix_lets_the_same_file_load(tmp_path: Path) -> None:
    flag = tmp_path / "constructed"
    path = tmp_path / "model.skops"
    sio.dump(Marker(str(flag)), path)

    scorer = formats.load("skops", path, Task.BINARY, [__name__])

    assert isinstance(scorer, skops_format.SklearnScorer)
    assert isinstance(scorer.estimator, Marker)
    assert flag.exists()  # proves the refusal above really stopped construction


def test_a_functools_partial_is_refused_unless_trusted(tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    sio.dump(functools.partial(int, base=2), path)

    with pytest.raises(PackageError, match=r"untrusted types: functools\.partial"):
        formats.load("skops", path, Task.REGRESSION, [])
    loaded = formats.load("skops", path, Task.REGRESSION, ["functools"])
    assert loaded.estimator("101") == 5  # type: ignore[attr-defined]


def test_a_prefix_only_matches_whole_module_names(tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    sio.dump(functools.partial(int, base=2), path)
    with pytest.raises(PackageError, match=r"functools\.partial"):
        formats.load("skops", path, Task.REGRESSION, ["functool"])


@pytest.mark.parametrize("function", [eval, exec, getattr, __import__])
def test_builtin_functions_inside_a_model_are_refused(tmp_path: Path, function: Any) -> None:
    path = tmp_path / "model.skops"
    sio.dump(make_pipeline(FunctionTransformer(func=function)), path)
    with pytest.raises(PackageError, match=rf"untrusted types: builtins\.{function.__name__}"):
        formats.load("skops", path, Task.BINARY, [])


def test_a_malformed_skops_file_is_a_package_error(tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    path.write_bytes(b"not a zip archive")
    with pytest.raises(PackageError, match=r"model\.skops is not a valid skops file"):
        formats.load("skops", path, Task.BINARY, [])


# --- a pickle under any model file name is refused and never executed ------------------


class Canary:
    """Unpickling this creates ``flag``: proof that a pickle was executed."""

    def __init__(self, flag: Path) -> None:
        self.flag = flag

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (str(self.flag),))


@pytest.mark.parametrize("protocol", [0, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("model_format", sorted(formats.FORMATS))
def test_a_pickle_payload_is_refused_and_never_executed(
    tmp_path: Path, model_format: str, protocol: int
) -> None:
    flag = tmp_path / "pwned"
    payload = pickle.dumps(Canary(flag), protocol=protocol)
    path = tmp_path / formats.FORMATS[model_format][1]
    path.write_bytes(payload)

    with pytest.raises(PackageError, match=rf"{path.name} is not a"):
        formats.load(model_format, path, Task.BINARY, [])

    assert not flag.exists()


def test_the_canary_does_fire_when_unpickled(tmp_path: Path) -> None:
    flag = tmp_path / "pwned"
    pickle.loads(pickle.dumps(Canary(flag)))  # the canary must really fire when unpickled
    assert flag.is_dir()


@pytest.mark.parametrize("model_format", ["lightgbm", "xgboost"])
def test_a_text_file_that_is_no_model_is_a_package_error(tmp_path: Path, model_format: str) -> None:
    path = tmp_path / formats.FORMATS[model_format][1]
    path.write_text("{not a model}\n", encoding="utf-8")
    with pytest.raises(PackageError, match=rf"{path.name} is not a"):
        formats.load(model_format, path, Task.REGRESSION, [])


def test_a_function_under_a_trusted_prefix_is_refused(tmp_path: Path) -> None:
    """skops calls functions it reconstructs: trust classes, never a library's functions."""
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.utils import shuffle

    path = tmp_path / "model.skops"
    sio.dump(FunctionTransformer(func=shuffle), path)
    with pytest.raises(PackageError, match=r"untrusted types: .*shuffle"):
        formats.load("skops", path, Task.REGRESSION, [])
