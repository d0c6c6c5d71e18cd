"""ONNX models, run by ONNX Runtime: a graph of plain operators and tensors, no code.

Loading needs only ``onnxruntime`` and numpy (no scikit-learn, LightGBM or
``onnx``), so a lean install can serve an ONNX package. The session is built
from the file's bytes, read once, and refuses anything that is not an ONNX model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from atoll.errors import PackageError, first_line
from atoll.types import Task

PROBABILITIES = "probabilities"
"""The classifier output atoll reads; converters name it so with ``zipmap`` off."""

_DTYPES: dict[str, type[np.floating[Any]]] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
}
_QUIET = 3
"""ONNX Runtime's log severity "error": its per-run shape warnings are noise to users."""


@dataclass(frozen=True)
class OnnxScorer:
    """An ONNX Runtime session behind the Scorer protocol.

    Binary classifiers that answer with the positive class only are widened
    to both columns, as :class:`~atoll.model.formats.BoosterScorer` does.
    """

    session: Any
    input_name: str
    input_dtype: type[np.floating[Any]]
    output_name: str
    task: Task

    def scores(self, matrix: np.ndarray) -> np.ndarray:
        feed = {self.input_name: np.ascontiguousarray(matrix, dtype=self.input_dtype)}
        raw = np.asarray(self.session.run([self.output_name], feed)[0], dtype=np.float64)
        if not self.task.is_classification:
            return raw.reshape(-1)
        if self.task is Task.BINARY and (raw.ndim == 1 or raw.shape[1] == 1):
            positive = raw.reshape(-1)
            return np.column_stack([1.0 - positive, positive])
        return raw


def save(model: Any, path: Path) -> None:
    """Write an ONNX model (a ``ModelProto`` or its serialised bytes)."""
    data = model if isinstance(model, bytes) else model.SerializeToString()
    path.write_bytes(data)


def load(path: Path, task: Task, trusted: list[str]) -> OnnxScorer:
    """Open ``path`` in ONNX Runtime (one thread per session: servers scale by workers).

    Raises:
        PackageError: the file is not a valid ONNX model, or lacks the input
            and output atoll needs.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = _QUIET
    try:
        session = ort.InferenceSession(
            path.read_bytes(), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # ONNX Runtime raises its own zoo of types (InvalidProtobuf, Fail...)
        raise PackageError(
            f"{path.name} is not a valid ONNX model: {first_line(exc)}", file=str(path)
        ) from None
    return OnnxScorer(session, *_input(session, path), _output(session, task, path), task)


def _input(session: Any, path: Path) -> tuple[str, type[np.floating[Any]]]:
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].type not in _DTYPES:
        found = ", ".join(f"{i.name}: {i.type}" for i in inputs) or "none"
        raise PackageError(
            f"{path.name}: expected one float tensor input, found {found}", file=str(path)
        )
    return inputs[0].name, _DTYPES[inputs[0].type]


def _output(session: Any, task: Task, path: Path) -> str:
    names = [output.name for output in session.get_outputs()]
    if not task.is_classification and len(names) == 1:
        return str(names[0])
    if task.is_classification and PROBABILITIES in names:
        return PROBABILITIES
    wanted = f"an output named {PROBABILITIES!r}" if task.is_classification else "one output"
    raise PackageError(
        f"{path.name}: a {task.value} model needs {wanted}, found {names}", file=str(path)
    )
