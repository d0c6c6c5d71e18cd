"""The reference a live window is compared with: a version's stored profile, made ready to bin.

A model package keeps the profile of its training rows and hold-out
predictions (:mod:`atoll.data.profile`): numeric quantile bins, top category
frequencies and the prediction distribution. This module turns it into bin
edges and expected proportions per column, so monitoring never needs the
training data again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from atoll.errors import PackageError
from atoll.schema import Schema

OTHER = "<other>"
"""The bucket of categories the reference did not keep (or never saw)."""


@dataclass(frozen=True)
class NumericReference:
    """Equal-count bin edges of a numeric column and the reference share of each bin."""

    edges: np.ndarray
    expected: np.ndarray
    minimum: float
    maximum: float
    std: float | None
    null_rate: float
    count: int

    def bin_index(self, values: np.ndarray) -> np.ndarray:
        """The bin of each non-null value, as the profile counts them (ends absorb the rest)."""
        return np.searchsorted(self.edges[1:-1], values, side="right")


@dataclass(frozen=True)
class CategoricalReference:
    """The categories the reference kept (most frequent first) and their shares.

    The last share is of ``<other>``: categories beyond the kept ones.
    """

    categories: tuple[str, ...]
    expected: np.ndarray
    truncated: bool
    null_rate: float
    count: int

    @property
    def buckets(self) -> tuple[str, ...]:
        return (*self.categories, OTHER)


ColumnReference = NumericReference | CategoricalReference


@dataclass(frozen=True)
class Reference:
    """Everything a window is judged against, for one model version."""

    model: str
    version: int
    task: str
    classes: list[Any]
    columns: dict[str, ColumnReference]
    skipped: dict[str, str]
    prediction: ColumnReference | None
    baseline: dict[str, float]
    sensitive: list[str]
    fairness_limits: dict[str, dict[str, float]] = field(default_factory=dict)
    schema: Schema | None = None

    @property
    def positive_class(self) -> str | None:
        """The positive label of a binary model, as a string."""
        return str(self.classes[1]) if self.task == "binary" and len(self.classes) == 2 else None

    def is_feature(self, column: str) -> bool:
        """Whether ``column`` reaches the model (not an id, time, ignored or unknown column)."""
        return self.schema is None or column in self.schema.features


def load_reference(directory: Path, manifest: Mapping[str, Any], version: int) -> Reference:
    """The reference of a verified package directory.

    Raises:
        PackageError: the package has no reference profile (``model X@v has
            no reference profile``) or it cannot be read.
    """
    from atoll.model.predictor import schema_from_manifest

    name = str(manifest.get("name", directory.name))
    profile = _read_profile(directory, manifest, f"{name}@{version}")
    spec = _read_json(directory / "spec.json") if (directory / "spec.json").is_file() else {}
    target = manifest.get("input_schema", {}).get("target")
    columns, skipped = _columns(profile.get("inputs", {}).get("columns", {}), target)
    return Reference(
        model=name,
        version=version,
        task=str(manifest.get("task")),
        classes=list(manifest.get("classes") or []),
        columns=columns,
        skipped=skipped,
        prediction=_prediction(profile.get("predictions") or {}, manifest),
        baseline={k: float(v) for k, v in (manifest.get("metrics") or {}).items()},
        sensitive=_sensitive(spec),
        fairness_limits=_fairness_limits(spec),
        schema=schema_from_manifest(manifest) if "input_schema" in manifest else None,
    )


def _read_profile(directory: Path, manifest: Mapping[str, Any], ref: str) -> dict[str, Any]:
    file = manifest.get("profile")
    if not file or not (directory / str(file)).is_file():
        raise PackageError(
            f"model {ref} has no reference profile: retrain it with this atoll to monitor it"
        )
    profile = _read_json(directory / str(file))
    if not isinstance(profile, dict) or "inputs" not in profile:
        raise PackageError(f"model {ref} has an unreadable reference profile")
    return profile


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise PackageError(f"cannot read {path.name} of the package: {exc}") from exc


def _columns(
    profiles: Mapping[str, Any], target: str | None
) -> tuple[dict[str, ColumnReference], dict[str, str]]:
    columns: dict[str, ColumnReference] = {}
    skipped: dict[str, str] = {}
    for name, profile in profiles.items():
        if name == target:
            continue  # the target is never in a request
        built = column_reference(profile)
        if built is None:
            skipped[name] = f"{profile.get('kind')} column: no drift statistic"
        else:
            columns[name] = built
    return columns, skipped


def column_reference(profile: Mapping[str, Any]) -> ColumnReference | None:
    """The reference of one column profile; None for datetime or empty columns."""
    null_rate = float(profile.get("null_rate") or 0.0)
    if profile.get("kind") == "numeric":
        edges, counts = profile.get("bin_edges"), profile.get("bin_counts")
        if not edges or not counts or sum(counts) == 0:
            return None
        return NumericReference(
            edges=np.asarray(edges, dtype=float),
            expected=_shares(counts),
            minimum=float(profile["min"]),
            maximum=float(profile["max"]),
            std=profile.get("std"),
            null_rate=null_rate,
            count=int(sum(counts)),
        )
    if profile.get("kind") == "categorical":
        frequencies: dict[str, int] = profile.get("frequencies") or {}
        other = int(profile.get("other_count") or 0)
        counts = [*frequencies.values(), other]
        if sum(counts) == 0:
            return None
        return CategoricalReference(
            categories=tuple(frequencies),
            expected=_shares(counts),
            truncated=other > 0,
            null_rate=null_rate,
            count=int(sum(counts)),
        )
    return None


def _prediction(profile: Mapping[str, Any], manifest: Mapping[str, Any]) -> ColumnReference | None:
    """The reference of the model's output: positive-class scores, class shares, or values."""
    task = manifest.get("task")
    if task == "regression":
        return column_reference(profile)
    histograms = profile.get("score_histogram")
    classes = [str(c) for c in manifest.get("classes") or []]
    if task == "binary" and histograms and len(classes) == 2 and classes[1] in histograms:
        histogram = histograms[classes[1]]
        if sum(histogram["bin_counts"]) == 0:
            return None
        return NumericReference(
            edges=np.asarray(histogram["bin_edges"], dtype=float),
            expected=_shares(histogram["bin_counts"]),
            minimum=0.0,
            maximum=1.0,
            std=None,
            null_rate=0.0,
            count=int(sum(histogram["bin_counts"])),
        )
    frequencies = profile.get("class_frequencies")
    if not frequencies:
        return None
    return column_reference({"kind": "categorical", "frequencies": frequencies, "other_count": 0})


def _shares(counts: Any) -> np.ndarray:
    values = np.asarray(counts, dtype=float)
    shares: np.ndarray = values / values.sum()
    return shares


def _sensitive(spec: Mapping[str, Any]) -> list[str]:
    configured = (spec.get("evaluate") or {}).get("fairness")
    if configured is not None:
        return [str(c) for c in configured]
    columns = spec.get("columns") or {}
    return [name for name, column in columns.items() if column.get("sensitive")]


def _fairness_limits(spec: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """The fairness gates a version was trained under: column -> metric -> upper limit."""
    limits: dict[str, dict[str, float]] = {}
    for gate in spec.get("gates") or []:
        column, bound = gate.get("column"), gate.get("max")
        if column and bound is not None and str(gate.get("metric", "")).endswith("_difference"):
            limits.setdefault(column, {})[gate["metric"]] = float(bound)
    return limits
