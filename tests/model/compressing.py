"""Trained demo projects for the compression tests: one small model per variant."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from atoll import api
from atoll.settings import Settings
from atoll.store.records import VersionInfo
from tests.conftest import write_demo_project

ROWS = 1500
"""Enough for 300 hold-out rows; few enough to train in a second or two."""

NAME = "credit-risk"
LOGISTIC = {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 1000}}
UNCONVERTIBLE = {"estimator": "sklearn.dummy.DummyClassifier", "params": {}}
"""A real scikit-learn classifier that skl2onnx has no converter for."""


def scaled_features() -> list[dict[str, Any]]:
    """The demo's steps, every numeric feature imputed and scaled (linear models need it)."""
    demo = yaml.safe_load(resources.files("atoll.data").joinpath("demo_spec.yaml").read_text())
    numeric = [
        name
        for name, column in demo["columns"].items()
        if column["type"] in ("int", "float") and column.get("role", "feature") == "feature"
    ]
    numeric.remove(demo["target"])
    imputed = {name for step in demo["features"] for name in step.get("columns", [])}
    rest = [name for name in numeric if name not in imputed]
    impute = {"step": "impute", "columns": rest, "strategy": "median"}
    return [*demo["features"], impute, {"step": "scale", "columns": numeric}]


@dataclass(frozen=True)
class Trained:
    root: Path
    settings: Settings
    version: VersionInfo

    @property
    def ref(self) -> str:
        return f"{self.version.name}@{self.version.version}"

    def package(self, ref: str | None = None) -> Path:
        """A verified copy of a registered version's package."""
        with api.open_registry(self.settings) as registry:
            return registry.fetch_package(ref or self.ref)


def train(root: Path, environ: dict[str, str] | None = None, **spec_changes: Any) -> Trained:
    """Train and register version 1 of a demo project (``spec_changes`` replace sections)."""
    spec_path = write_demo_project(root, rows=ROWS, **spec_changes)
    env = {"ATOLL_ACTOR": "compress-test", **(environ or {})}
    settings = Settings.from_env(project_dir=root, environ=env)
    outcome = api.train(spec_path, settings=settings)
    return Trained(root, settings, outcome.version)
