"""The ``compress:`` section of ``atoll.yaml``: the defaults of ``atoll compress``.

A smaller representation is kept only if it costs at most ``max_metric_drop``
of the metric on the hold-out rows and its predictions stay within
``tolerance`` of the original model's; the command line may override each.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

CANDIDATES = ("onnx", "onnx-fp16", "onnx-int8", "trees")
"""Candidate families, beside the native model that every run measures as the baseline.

``trees`` stands for ``trees-<k>`` at 75% and 50% of the trees, natively and as ONNX.
"""

Target = Literal["serve", "archive"]
"""What the size is for: the files a server loads, or their zstd archive at rest."""


class CompressSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_metric_drop: float = Field(
        0.001, ge=0.0, description="Largest loss of the metric a smaller model may cost."
    )
    metric: str | None = Field(None, description="Default: the first of evaluate.metrics.")
    target: Target = "serve"
    tolerance: float = Field(
        1e-3, gt=0.0, description="Largest difference of any probability (or value) allowed."
    )
    candidates: list[str] = Field(default_factory=lambda: list(CANDIDATES))

    @field_validator("candidates")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        unknown = [name for name in names if name not in CANDIDATES]
        if unknown:
            raise ValueError(f"unknown candidates {unknown}: choose from {list(CANDIDATES)}")
        return names
