"""The parent's gates, judged again on what the compressed model measured.

A compressed model is a new version: it may be ``ready`` only when it meets
the gates its parent was trained under (the package's ``spec.json``), judged
by :func:`atoll.model.gates.check_gates` as training judges them, on the
metrics measured on the hold-out rows. Fairness gates need the sensitive
columns, which the hold-out rows do not keep (they hold the features and the
target), so those are judged on the parent's fairness results
(``evaluation.json``), and the gates block says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from atoll.model.gates import check_gates
from atoll.model.package import read_json
from atoll.spec import Gate

PARENT_FAIRNESS = (
    "fairness gates are judged on the parent's fairness results: the hold-out rows "
    "keep no sensitive columns"
)
_BOUNDS = ("metric", "min", "max", "column")


def judge_gates(
    directory: Path, manifest: dict[str, Any], metrics: dict[str, float]
) -> dict[str, Any]:
    """The manifest's ``gates`` block for the package at ``directory``, given its ``metrics``."""
    gates = packaged_gates(directory, manifest)
    fairness = _packaged(directory, manifest, manifest.get("evaluation")).get("fairness", {})
    results = check_gates(gates, metrics, fairness)
    block: dict[str, Any] = {
        "passed": all(result.passed for result in results),
        "results": [result.to_dict() for result in results],
    }
    if any(gate.column is not None for gate in gates):
        block["note"] = PARENT_FAIRNESS
    return block


def packaged_gates(directory: Path, manifest: dict[str, Any]) -> list[Gate]:
    """The gates of the spec the package was trained with (else the bounds its manifest lists)."""
    spec = packaged_spec(directory, manifest)
    if "gates" in spec:
        return [Gate.model_validate(gate) for gate in spec["gates"]]
    results = manifest.get("gates", {}).get("results", [])
    return [Gate.model_validate({key: result.get(key) for key in _BOUNDS}) for result in results]


def packaged_spec(directory: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The package's ``spec.json`` as a mapping, empty when the package has none."""
    return _packaged(directory, manifest, "spec.json")


def _packaged(directory: Path, manifest: dict[str, Any], name: str | None) -> dict[str, Any]:
    if name is None or name not in manifest.get("files", {}):
        return {}
    data = read_json(directory, name)
    return data if isinstance(data, dict) else {}
