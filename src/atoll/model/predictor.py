"""Predictor: validate -> wrangle -> predict. The only prediction path in atoll.

Training evaluation, batch scoring and the HTTP server all call
:meth:`Predictor.predict`, so a row gets the same answer wherever it is scored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from atoll.data.wrangler import Wrangler
from atoll.errors import SchemaError
from atoll.model import formats
from atoll.model.outputs import output_records
from atoll.model.package import read_json, verify_package
from atoll.schema import Column, Data, Schema
from atoll.types import Task

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Prediction:
    """Predicted labels (or values), and class probabilities for classifiers."""

    predictions: np.ndarray
    probabilities: np.ndarray | None
    classes: list[Any]

    def to_records(self) -> list[dict[str, Any]]:
        """One JSON-friendly dict per row: ``prediction`` and, if any, ``probabilities``."""
        probabilities = None if self.probabilities is None else self.probabilities.tolist()
        return output_records(self.predictions.tolist(), probabilities, self.classes)


@dataclass(frozen=True)
class Predictor:
    """A fitted wrangler and model behind the schema they were trained on."""

    schema: Schema
    wrangler: Wrangler
    scorer: formats.Scorer
    task: Task
    classes: list[Any]
    manifest: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(
        cls,
        directory: Path,
        allow_imports: Sequence[str] = (),
        *,
        signing_key: bytes | None = None,
    ) -> Predictor:
        """Verify a package's hashes (and, with ``signing_key``, its signature), then load it.

        Args:
            directory: the package directory.
            allow_imports: module prefixes trusted for user steps and model types,
                beyond the built-ins. A package cannot grant this to itself.
            signing_key: refuse the package unless its manifest is signed with this key.
        """
        manifest = verify_package(directory, signing_key=signing_key)
        return cls.from_verified(directory, manifest, allow_imports)

    @classmethod
    def from_verified(
        cls, directory: Path, manifest: dict[str, Any], allow_imports: Sequence[str] = ()
    ) -> Predictor:
        """Load a package whose files were just checked against ``manifest``.

        For callers that verified the copy themselves (the registry's fetch),
        so a load hashes each file once.
        """
        schema = schema_from_manifest(manifest)
        trusted = list(allow_imports)
        wrangler = Wrangler.from_state(read_json(directory, manifest["wrangler"]), trusted)
        model = manifest["model"]
        task = Task(manifest["task"])
        scorer = formats.load(model["format"], directory / model["file"], task, trusted)
        return cls(schema, wrangler, scorer, task, list(manifest.get("classes", [])), manifest)

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", ""))

    def predict(self, data: Data) -> Prediction:
        """Validate ``data`` against the schema, then predict; raises SchemaError on bad rows.

        Args:
            data: a frame, records (one mapping per row), or columns (a mapping
                of column name to an equal-length list of values, as the HTTP
                codecs decode a request; columns of different lengths raise
                :class:`~atoll.errors.DataError`).
        """
        result = self.schema.validate(data, "predict")
        if not result.report.ok:
            raise SchemaError(result.report)
        return self.predict_valid(result.columns)

    def predict_valid(self, frame: pd.DataFrame | Mapping[str, np.ndarray]) -> Prediction:
        """Predict on data that already passed validation (canonical layout).

        ``frame`` may be :attr:`~atoll.schema.Validated.columns`, which skips
        building a DataFrame: for a few rows that is most of the cost.
        """
        scores = self.scorer.scores(self.wrangler.matrix(frame))
        if not self.task.is_classification:
            return Prediction(scores, None, [])
        labels = np.asarray(self.classes, dtype=object)[np.argmax(scores, axis=1)]
        return Prediction(_narrow(labels), scores, self.classes)


def _narrow(labels: np.ndarray) -> np.ndarray:
    """Labels as their natural array type (ints stay ints, strings become str)."""
    return np.array(labels.tolist())


def schema_to_manifest(schema: Schema) -> dict[str, Any]:
    return {
        "target": schema.target,
        "columns": {
            n: c.model_dump(mode="json", exclude_defaults=True) for n, c in schema.columns.items()
        },
    }


def schema_from_manifest(manifest: Mapping[str, Any]) -> Schema:
    spec = manifest["input_schema"]
    columns = {name: Column.model_validate(col) for name, col in spec["columns"].items()}
    return Schema(columns, spec["target"])
