"""Model files to ONNX, and ONNX graphs to smaller weights: the converters atoll trusts.

LightGBM and XGBoost go through onnxmltools, scikit-learn estimators through
skl2onnx. Only the estimator is converted: the wrangling stays atoll's own
(numpy) steps, so there is one implementation of every transform. Each
function raises :class:`NotBuilt` with a reason a person can act on.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from atoll.errors import first_line
from atoll.types import Task

ONNX_OPSET = 15
"""The newest main opset onnxmltools 1.16 supports for LightGBM (skl2onnx gets the same)."""

ML_OPSET = 3
"""The ai.onnx.ml opset of skl2onnx's tree and linear converters (ONNX Runtime runs it)."""

TREE_OPS = frozenset({"TreeEnsemble", "TreeEnsembleClassifier", "TreeEnsembleRegressor"})
WEIGHT_OPS = frozenset({"MatMul", "Gemm"})
_LINEAR_OPS = {"LinearClassifier", "LinearRegressor"}
"""Left out so skl2onnx writes linear models as MatMul + Add, which fp16 and int8 can shrink."""


class NotBuilt(Exception):
    """A candidate representation could not be built; the message says why.

    A verdict carried into the table, never raised out of :mod:`atoll.model.compress`.
    """


def to_onnx(
    model_format: str, path: Path, task: Task, n_features: int, trusted: list[str]
) -> bytes:
    """Convert the model file ``path`` (in atoll format ``model_format``) to ONNX bytes.

    Raises:
        NotBuilt: the format or the estimator has no converter, or conversion failed.
    """
    converters: dict[str, Callable[[Path, Task, int, list[str]], Any]] = {
        "lightgbm": _lightgbm,
        "xgboost": _xgboost,
        "skops": _sklearn,
    }
    if model_format not in converters:
        raise NotBuilt(f"no ONNX converter for {model_format!r} models")
    with failing_as_not_built("conversion"):
        data: bytes = converters[model_format](path, task, n_features, trusted).SerializeToString()
    return data


def lightgbm_text_to_onnx(text: str, n_features: int) -> bytes:
    """A LightGBM text model as ONNX (the pruned ``trees-<k>`` models go this way too)."""
    with failing_as_not_built("conversion"):
        data: bytes = _lightgbm_booster(text, n_features).SerializeToString()
    return data


@contextmanager
def failing_as_not_built(what: str) -> Iterator[None]:
    """Any failure inside becomes :class:`NotBuilt`, ``what`` and its first line the reason."""
    try:
        yield
    except NotBuilt:
        raise
    except Exception as exc:  # converters and parsers raise bare RuntimeErrors, ValueErrors...
        raise NotBuilt(f"{what} failed: {first_line(exc)}") from exc


def _lightgbm(path: Path, task: Task, n_features: int, trusted: list[str]) -> Any:
    return _lightgbm_booster(path.read_text("utf-8"), n_features)


def _lightgbm_booster(text: str, n_features: int) -> Any:
    import lightgbm as lgb
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    booster = lgb.Booster(model_str=text)
    types = [("input", FloatTensorType([None, n_features]))]
    return convert_lightgbm(booster, initial_types=types, zipmap=False, target_opset=ONNX_OPSET)


def _xgboost(path: Path, task: Task, n_features: int, trusted: list[str]) -> Any:
    import xgboost as xgb
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    booster = xgb.Booster()
    booster.load_model(str(path))
    types = [("input", FloatTensorType([None, n_features]))]
    return convert_xgboost(booster, initial_types=types, target_opset=ONNX_OPSET)


def _sklearn(path: Path, task: Task, n_features: int, trusted: list[str]) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    from atoll.model.formats import skops_format

    estimator = skops_format.load(path, task, trusted).estimator
    converters = _bool_safe(type(estimator))
    if not converters:
        raise NotBuilt(f"skl2onnx has no converter for {type(estimator).__name__}")
    return convert_sklearn(
        estimator,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        options={"zipmap": False} if task.is_classification else None,
        target_opset={"": ONNX_OPSET, "ai.onnx.ml": ML_OPSET},
        black_op=_LINEAR_OPS,
        custom_conversion_functions=converters,
    )


def _bool_safe(estimator_type: type) -> dict[type, Callable[..., None]]:
    """The estimator's own skl2onnx converter, writing integer flags as ints.

    skl2onnx 1.20 writes some tree flags (``nodes_missing_value_tracks_true``)
    as Python bools, which current protobuf refuses in integer attributes, so
    HistGradientBoosting models fail to convert. The wrapper changes nothing
    else, and only while the estimator's own converter runs: the container's
    ``add_node`` is restored afterwards, so the operators converted after it
    (casts, label outputs) are written as skl2onnx writes them.
    """
    from skl2onnx._parse import sklearn_operator_name_map
    from skl2onnx.common._registration import get_converter

    alias = sklearn_operator_name_map.get(estimator_type)
    if alias is None:
        return {}
    original = get_converter(alias)

    def convert(scope: Any, operator: Any, container: Any) -> None:
        add_node = container.add_node

        def add_int_flags(*args: Any, **attributes: Any) -> Any:
            return add_node(*args, **{k: _ints(v) for k, v in attributes.items()})

        container.add_node = add_int_flags
        try:
            original(scope, operator, container)
        finally:
            container.add_node = add_node

    return {estimator_type: convert}


def _ints(value: Any) -> Any:
    if isinstance(value, list) and any(isinstance(item, bool) for item in value):
        return [int(item) if isinstance(item, bool) else item for item in value]
    return value


def operators(model: bytes) -> set[str]:
    """The operator types of an ONNX graph."""
    import onnx

    return {node.op_type for node in onnx.load_from_string(model).graph.node}


def check_weights(model: bytes) -> None:
    """Refuse graphs that fp16 weights or int8 quantization cannot shrink.

    Raises:
        NotBuilt: a tree ensemble (its numbers are node attributes, not weight
            tensors), or a graph with no MatMul/Gemm weights.
    """
    ops = operators(model)
    if ops & TREE_OPS:
        raise NotBuilt("not applicable to tree ensembles (their thresholds are not weight tensors)")
    if not ops & WEIGHT_OPS:
        raise NotBuilt("not applicable: the ONNX graph has no MatMul or Gemm weights")


def fp16_weights(model: bytes) -> bytes:
    """Store every float32 weight tensor as float16, cast back to float32 when the model loads.

    Computation stays in float32: only the stored weights lose precision
    (about 3 significant digits), and the file shrinks by up to half.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    proto = onnx.load_from_string(model)
    graph = proto.graph
    casts = []
    for tensor in graph.initializer:
        if tensor.data_type != TensorProto.FLOAT or _size(tensor) < 2:
            continue
        name = tensor.name
        half = numpy_helper.to_array(tensor).astype(np.float16)
        tensor.CopyFrom(numpy_helper.from_array(half, f"{name}__fp16"))
        casts.append(helper.make_node("Cast", [f"{name}__fp16"], [name], to=TensorProto.FLOAT))
    if not casts:
        raise NotBuilt("not applicable: the ONNX graph has no float32 weight tensors")
    nodes = [*casts, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    data: bytes = proto.SerializeToString()
    return data


def _size(tensor: Any) -> int:
    size = 1
    for dim in tensor.dims:
        size *= dim
    return size


def quantize_int8(model: bytes) -> bytes:
    """Dynamic int8 quantization of the MatMul/Gemm weights (ONNX Runtime's own tool).

    Raises:
        NotBuilt: quantization failed, or quantized nothing (e.g. weights that
            are float16 already): the graph would only be re-serialized.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="atoll-int8-") as folder, _no_preprocess_hint():
        source, target = Path(folder) / "model.onnx", Path(folder) / "model.int8.onnx"
        source.write_bytes(model)
        with failing_as_not_built("quantization"):
            quantize_dynamic(source, target, weight_type=QuantType.QInt8)
        quantized = target.read_bytes()
    if not operators(quantized) - operators(model):
        raise NotBuilt("not applicable: the ONNX graph has no float32 MatMul or Gemm weights")
    return quantized


class _DropHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextmanager
def _no_preprocess_hint() -> Iterator[None]:
    """quantize_dynamic logs advice meant for image models on the root logger; hide it."""
    hint = _DropHint()
    root = logging.getLogger()
    root.addFilter(hint)
    try:
        yield
    finally:
        root.removeFilter(hint)
