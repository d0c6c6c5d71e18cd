"""The candidate representations of one model, each built or refused with a reason.

``onnx`` converts the estimator; ``onnx-fp16`` and ``onnx-int8`` shrink that
graph's weight tensors (linear and neural models only); ``trees-<k>`` keeps
the first k boosting iterations of a LightGBM model (75% and 50% of them; one
tree each, or one per class for multiclass), natively and as ONNX. A
candidate that cannot be built, or whose model cannot be read, carries its
reason into the table: nothing falls back silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from atoll.model.compress import _onnx
from atoll.model.compress._onnx import NotBuilt
from atoll.types import Task

TREE_FRACTIONS = (0.75, 0.5)
"""Shares of a LightGBM model's boosting iterations the ``trees-<k>`` candidates keep."""

T = TypeVar("T")


@dataclass(frozen=True)
class Source:
    """The original package: where it is, what its manifest says, how wide its matrix is."""

    directory: Path
    manifest: dict[str, Any]
    n_features: int
    trusted: list[str] = field(default_factory=list)

    @property
    def task(self) -> Task:
        return Task(self.manifest["task"])

    @property
    def model_format(self) -> str:
        return str(self.manifest["model"]["format"])

    @property
    def model_path(self) -> Path:
        return self.directory / str(self.manifest["model"]["file"])


@dataclass(frozen=True)
class Built:
    """A candidate's model file, ready to replace the original one in a package copy."""

    name: str
    format: str
    data: bytes
    details: dict[str, Any] = field(default_factory=dict)


Outcome = Built | NotBuilt


def build(source: Source, families: list[str]) -> list[tuple[str, Outcome]]:
    """Every candidate of the requested families, in table order.

    A model that is ONNX already (a compressed version) is not converted
    again, but its graph can still get smaller weights.
    """
    if source.model_format == "onnx":
        onnx: Outcome = Built("onnx", "onnx", source.model_path.read_bytes())
    else:
        onnx = _attempt(lambda: _converted(source))
    out: list[tuple[str, Outcome]] = []
    if "onnx" in families:
        already = NotBuilt("the model is ONNX already")
        out.append(("onnx", already if source.model_format == "onnx" else onnx))
    if "onnx-fp16" in families:
        out.append(("onnx-fp16", _shrunk("onnx-fp16", onnx, _onnx.fp16_weights)))
    if "onnx-int8" in families:
        out.append(("onnx-int8", _shrunk("onnx-int8", onnx, _onnx.quantize_int8)))
    if "trees" in families:
        out.extend(_pruned(source))
    return out


def _converted(source: Source) -> Built:
    data = _onnx.to_onnx(
        source.model_format, source.model_path, source.task, source.n_features, source.trusted
    )
    return Built("onnx", "onnx", data)


def _attempt(make: Callable[[], T]) -> T | NotBuilt:
    try:
        return make()
    except NotBuilt as reason:
        return reason


def _shrunk(name: str, onnx: Outcome, shrink: Callable[[bytes], bytes]) -> Outcome:
    if isinstance(onnx, NotBuilt):
        return NotBuilt("needs the onnx candidate, which was not built")

    def make() -> Built:
        _onnx.check_weights(onnx.data)
        return Built(name, "onnx", shrink(onnx.data))

    return _attempt(make)


def _pruned(source: Source) -> list[tuple[str, Outcome]]:
    """``trees-<k>`` and ``trees-<k>-onnx`` for each kept share of a LightGBM model's iterations.

    k counts boosting iterations: a multiclass model has one tree per class in each.
    """
    if source.model_format != "lightgbm":
        return [("trees", NotBuilt("tree pruning is implemented for LightGBM models only"))]
    booster = _attempt(partial(_booster, source.model_path))
    if isinstance(booster, NotBuilt):
        return [("trees", booster)]
    total = booster.current_iteration()
    keep = sorted({round(total * share) for share in TREE_FRACTIONS} - {0, total}, reverse=True)
    if not keep:
        return [("trees", NotBuilt(f"too few iterations to prune ({total})"))]
    out: list[tuple[str, Outcome]] = []
    for k in keep:
        native = _attempt(partial(_first_iterations, booster, k))
        out.append((f"trees-{k}", native))
        onnx: Outcome = native
        if isinstance(native, Built):
            onnx = _attempt(partial(_pruned_onnx, native, source.n_features))
        out.append((f"trees-{k}-onnx", onnx))
    return out


def _booster(path: Path) -> Any:
    """The LightGBM model at ``path``; a file LightGBM cannot parse is :class:`NotBuilt`."""
    import lightgbm as lgb

    with _onnx.failing_as_not_built("reading the LightGBM model"):
        return lgb.Booster(model_str=path.read_text("utf-8"))


def _first_iterations(booster: Any, k: int) -> Built:
    """The model's first ``k`` iterations as LightGBM text."""
    total = booster.current_iteration()
    with _onnx.failing_as_not_built("pruning"):
        text = booster.model_to_string(num_iteration=k)
    trees = k * booster.num_model_per_iteration()
    details = {"iterations": k, "of": total, "trees": trees}
    return Built(f"trees-{k}", "lightgbm", text.encode(), details)


def _pruned_onnx(native: Built, n_features: int) -> Built:
    data = _onnx.lightgbm_text_to_onnx(native.data.decode(), n_features)
    return Built(f"{native.name}-onnx", "onnx", data, native.details)
