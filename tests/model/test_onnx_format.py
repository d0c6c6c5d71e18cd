"""The ONNX format: converted models score like the originals, and bad files are refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import onnx
import pytest
import xgboost as xgb
from onnx import TensorProto, helper, numpy_helper
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge

from atoll.errors import PackageError
from atoll.model import formats
from atoll.model.compress import _onnx
from atoll.model.formats.onnx_format import OnnxScorer
from atoll.spec_compress import CompressSpec
from atoll.types import Task

TOLERANCE = CompressSpec().tolerance
N_ROWS = 300
N_FEATURES = 5


def _data(task: Task, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_ROWS, N_FEATURES))
    x[rng.random(x.shape) < 0.05] = np.nan  # missing values take each tree's default branch
    signal = np.nan_to_num(x[:, 0]) + 0.5 * np.nan_to_num(x[:, 1])
    if task is Task.BINARY:
        return x, (signal > 0).astype(np.int64)
    if task is Task.MULTICLASS:
        return x, np.digitize(signal, [-0.5, 0.5]).astype(np.int64)
    return x, 3.0 * signal + np.nan_to_num(x[:, 2])


MODELS: dict[str, tuple[Task, Callable[[], Any]]] = {
    "lightgbm-binary": (Task.BINARY, lambda: lgb.LGBMClassifier(n_estimators=20, verbosity=-1)),
    "lightgbm-multiclass": (
        Task.MULTICLASS,
        lambda: lgb.LGBMClassifier(n_estimators=10, verbosity=-1),
    ),
    "lightgbm-regression": (
        Task.REGRESSION,
        lambda: lgb.LGBMRegressor(n_estimators=20, verbosity=-1),
    ),
    "xgboost-binary": (Task.BINARY, lambda: xgb.XGBClassifier(n_estimators=10, max_depth=3)),
    "hist-gb-binary": (Task.BINARY, lambda: HistGradientBoostingClassifier(max_iter=20)),
    "hist-gb-regression": (Task.REGRESSION, lambda: HistGradientBoostingRegressor(max_iter=20)),
    "logistic-multiclass": (Task.MULTICLASS, lambda: LogisticRegression(max_iter=500)),
    "ridge-regression": (Task.REGRESSION, lambda: Ridge()),
}


def _native_and_onnx(tmp_path: Path, name: str) -> tuple[Task, np.ndarray, Any, OnnxScorer]:
    task, factory = MODELS[name]
    x, y = _data(task)
    if name in ("logistic-multiclass", "ridge-regression"):
        x = np.nan_to_num(x)  # linear models take no missing values
    estimator = factory().fit(x, y)
    model_format, model_file = formats.save(estimator, tmp_path)
    native = formats.load(model_format, tmp_path / model_file, task, [])
    data = _onnx.to_onnx(model_format, tmp_path / model_file, task, N_FEATURES, [])
    (tmp_path / "model.onnx").write_bytes(data)
    scorer = formats.load("onnx", tmp_path / "model.onnx", task, [])
    assert isinstance(scorer, OnnxScorer)
    return task, x, native, scorer


@pytest.mark.parametrize("name", list(MODELS))
def test_a_converted_model_scores_like_the_native_one(tmp_path: Path, name: str) -> None:
    task, x, native, scorer = _native_and_onnx(tmp_path, name)

    expected, got = native.scores(x), scorer.scores(x)

    assert got.dtype == np.float64
    assert got.shape == expected.shape
    if task is Task.REGRESSION:
        assert got.ndim == 1
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=TOLERANCE)
    else:
        assert got.shape[1] == (2 if task is Task.BINARY else 3)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
        assert np.max(np.abs(got - expected)) <= TOLERANCE


def test_hist_gradient_boosting_converts_despite_skl2onnx_bool_flags(tmp_path: Path) -> None:
    """skl2onnx writes Python bools into integer attributes; atoll's wrapper fixes that."""
    _task, _x, _native, scorer = _native_and_onnx(tmp_path, "hist-gb-binary")
    ops = _onnx.operators((tmp_path / "model.onnx").read_bytes())

    assert "TreeEnsembleClassifier" in ops
    assert scorer.input_dtype is np.float32


def test_the_bool_flag_wrapper_is_undone_when_the_estimator_converter_returns() -> None:
    """The wrapped ``add_node`` lasts only while the estimator's own converter runs."""
    from skl2onnx.common._container import ModelComponentContainer

    convert = _onnx._bool_safe(HistGradientBoostingClassifier)[HistGradientBoostingClassifier]
    container = ModelComponentContainer(target_opset=_onnx.ONNX_OPSET)
    add_node = container.add_node

    with pytest.raises(AttributeError):  # no scope or operator: the converter stops at once
        convert(None, None, container)

    assert container.add_node == add_node


def test_a_linear_model_becomes_a_matmul_graph_that_fp16_and_int8_can_shrink(
    tmp_path: Path,
) -> None:
    _native_and_onnx(tmp_path, "logistic-multiclass")
    data = (tmp_path / "model.onnx").read_bytes()

    _onnx.check_weights(data)
    half = _onnx.fp16_weights(data)
    quantized = _onnx.quantize_int8(data)

    assert "MatMul" in _onnx.operators(data)
    assert "Cast" in _onnx.operators(half)
    assert "MatMulInteger" in _onnx.operators(quantized)
    weights = [t for t in onnx.load_from_string(half).graph.initializer if t.name.endswith("fp16")]
    assert weights and all(t.data_type == TensorProto.FLOAT16 for t in weights)


def test_int8_refuses_a_graph_whose_weights_are_float16_already(tmp_path: Path) -> None:
    """quantize_dynamic leaves such a graph as it is: the result would be int8 in name only."""
    _native_and_onnx(tmp_path, "logistic-multiclass")
    half = _onnx.fp16_weights((tmp_path / "model.onnx").read_bytes())

    with pytest.raises(_onnx.NotBuilt, match="no float32 MatMul or Gemm weights"):
        _onnx.quantize_int8(half)


def test_fp16_and_int8_refuse_tree_ensembles(tmp_path: Path) -> None:
    _native_and_onnx(tmp_path, "lightgbm-binary")

    with pytest.raises(_onnx.NotBuilt, match="not applicable to tree ensembles"):
        _onnx.check_weights((tmp_path / "model.onnx").read_bytes())


def test_a_format_without_a_converter_is_not_built(tmp_path: Path) -> None:
    with pytest.raises(_onnx.NotBuilt, match="no ONNX converter for 'onnx' models"):
        _onnx.to_onnx("onnx", tmp_path / "model.onnx", Task.BINARY, N_FEATURES, [])


@pytest.mark.parametrize(
    "content",
    [b"", b"tree\nversion=v4\n", b"\x08\x07" + bytes(range(256))],
    ids=["empty", "lightgbm-text", "garbage"],
)
def test_a_file_that_is_not_onnx_is_refused_by_name(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(content)

    with pytest.raises(PackageError, match=r"model\.onnx is not a valid ONNX model") as caught:
        formats.load("onnx", path, Task.BINARY, [])

    assert caught.value.context["file"] == str(path)


def _tiny_graph(path: Path, output: str, dtype: int) -> None:
    """input (n, 2) -> MatMul -> Sigmoid -> ``output`` (n, 1): the positive class only."""
    numpy_type = np.float64 if dtype == TensorProto.DOUBLE else np.float32
    weights = numpy_helper.from_array(np.array([[1.0], [-1.0]], dtype=numpy_type), "w")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "w"], ["logit"]),
            helper.make_node("Sigmoid", ["logit"], [output]),
        ],
        "tiny",
        [helper.make_tensor_value_info("input", dtype, [None, 2])],
        [helper.make_tensor_value_info(output, dtype, [None, 1])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())


@pytest.mark.parametrize("dtype", [TensorProto.FLOAT, TensorProto.DOUBLE], ids=["f32", "f64"])
def test_a_binary_model_answering_one_column_is_widened_to_two(tmp_path: Path, dtype: int) -> None:
    path = tmp_path / "model.onnx"
    _tiny_graph(path, "probabilities", dtype)
    x = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0]])

    scores = formats.load("onnx", path, Task.BINARY, []).scores(x)

    positive = 1.0 / (1.0 + np.exp(-(x[:, 0] - x[:, 1])))
    np.testing.assert_allclose(scores[:, 1], positive, rtol=1e-6)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0)


def test_a_classifier_without_a_probabilities_output_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    _tiny_graph(path, "variable", TensorProto.FLOAT)

    with pytest.raises(PackageError, match="needs an output named 'probabilities'"):
        formats.load("onnx", path, Task.BINARY, [])
    assert formats.load("onnx", path, Task.REGRESSION, []).scores(np.ones((2, 2))).shape == (2,)
