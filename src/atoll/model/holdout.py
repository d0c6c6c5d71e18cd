"""The hold-out rows a package keeps, so its model can be re-evaluated (e.g. compressed) later.

Training writes the test split's feature columns and target as
``holdout.parquet`` (zstd, at most :data:`MAX_ROWS` rows, sampled with the
split's seed); a compressed child refers to its parent's copy by sha256.
Rows that hold personal data never travel: when a feature column is marked
``pii``, the package keeps no hold-out and callers must bring their own rows.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from atoll.errors import DataError, PackageError, SchemaError
from atoll.model.package import referenced_blobs, safe_name
from atoll.types import Task

if TYPE_CHECKING:
    import pandas as pd

    from atoll.schema import Schema
    from atoll.spec import Spec

FILE = "holdout.parquet"
MAX_ROWS = 20_000
"""Enough rows to measure a metric drop of 0.001 with some confidence, yet a small file."""


def holdout_bytes(spec: Spec, frame: pd.DataFrame, test: np.ndarray) -> tuple[bytes, int] | None:
    """The test rows' features and target as zstd Parquet, and their count; None with PII."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = spec.schema
    if any(schema.columns[name].pii for name in schema.features):
        return None
    rows = np.sort(test)
    if rows.size > MAX_ROWS:
        rng = np.random.default_rng(spec.split.seed)
        rows = np.sort(rng.choice(rows, MAX_ROWS, replace=False))
    part = frame.take(rows)[[*schema.features, schema.target]].reset_index(drop=True)
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(part, preserve_index=False), buffer, compression="zstd")
    return buffer.getvalue(), int(rows.size)


def holdout_file(manifest: Mapping[str, Any]) -> str | None:
    """The name of a package's hold-out file (held or referred to); None when it keeps none."""
    entry = manifest.get("holdout")
    if not isinstance(entry, dict) or not entry.get("file"):
        return None
    return safe_name(str(entry["file"]))


SharedCopy = Callable[[str, str], Path]
"""``(name, sha256) -> path`` of a verified local copy of a blob a package refers to."""


def read_holdout(
    directory: Path, manifest: dict[str, Any], shared: SharedCopy | None = None
) -> pd.DataFrame:
    """The hold-out rows of a verified package, held in it or referred to by hash.

    A compressed child refers to its parent's hold-out (manifest
    ``references``) instead of holding a copy; ``shared`` fetches that blob.

    Raises:
        PackageError: the package keeps none (older packages, or PII features),
            or refers to one and no ``shared`` was given.
    """
    from atoll.data.sources import read_frame

    where = f"package {manifest.get('name', directory)}"
    name = holdout_file(manifest)
    if name is None:
        raise PackageError(
            f"{where} keeps no hold-out rows (packages from before hold-outs, or with a "
            "feature column marked pii, do not): pass a data file with the target column",
            file=FILE,
        )
    referred = referenced_blobs(manifest, where).get(name)
    if referred is None:
        return read_frame(str(directory / name))
    if shared is None:
        raise PackageError(f"{where} refers to its hold-out rows in the artifact store", file=name)
    return read_frame(str(shared(name, referred)))


@dataclass(frozen=True)
class Labelled:
    """Validated rows ready for the Predictor, and their true targets (class indices)."""

    columns: dict[str, np.ndarray]
    y: np.ndarray
    rows: int
    dropped: int


def labelled(frame: pd.DataFrame, schema: Schema, task: Task, classes: list[Any]) -> Labelled:
    """Validate ``frame`` for prediction and encode its target as training did.

    Invalid rows are left out and counted, as training leaves them out.

    Raises:
        DataError: no target column, no valid rows, or a label the model never saw.
        SchemaError: a feature column is missing.
    """
    if schema.target not in frame.columns:
        raise DataError(f"the hold-out rows need the target column {schema.target!r}")
    result = schema.validate(frame, "predict")
    if any(v.rule in ("missing_column", "unexpected_column") for v in result.report.violations):
        raise SchemaError(result.report, "the hold-out rows")
    keep = ~result.invalid_rows
    if not keep.any():
        raise DataError(f"none of the {len(frame):,} hold-out rows is valid")
    columns = {name: values[keep] for name, values in result.columns.items()}
    y = _encode(columns[schema.target], task, classes, schema.target)
    return Labelled(columns, y, int(keep.sum()), int((~keep).sum()))


def _encode(values: np.ndarray, task: Task, classes: list[Any], target: str) -> np.ndarray:
    if not task.is_classification:
        return np.asarray(values, dtype=np.float64)
    index = {plain_label(label): i for i, label in enumerate(classes)}
    try:
        return np.array([index[plain_label(v)] for v in values.tolist()], dtype=np.int64)
    except KeyError as exc:
        raise DataError(
            f"target {target!r} holds {exc.args[0]!r}, not one of the model's classes {classes}",
            column=target,
        ) from None


def plain_label(value: Any) -> Any:
    """Integral float labels (how validated int columns arrive) become ints, as in training."""
    return int(value) if isinstance(value, float) and value.is_integer() else value
