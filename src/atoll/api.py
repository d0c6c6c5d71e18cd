"""The Python twin of every ``atoll`` command, and the one place that composes the layers.

The CLI is a thin face over these functions; each takes plain values and a
:class:`~atoll.settings.Settings` (built from the environment when omitted).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atoll._progress import Reporter, Stages
from atoll.errors import AtollError, DataError, PromotionError, SpecError
from atoll.settings import STATE_DIR, Settings
from atoll.spec import SPEC_FILE, Spec, load_project_options, load_spec
from atoll.types import ModelRef

if TYPE_CHECKING:
    import pandas as pd

    from atoll.model.predictor import Predictor
    from atoll.model.train import TrainResult
    from atoll.schema import Column, Mode, Schema, ValidationReport
    from atoll.spec import SqlSource
    from atoll.store.keys import ApiKey
    from atoll.store.registry import AuditEntry, ModelInfo, Registry, VersionInfo


@dataclass(frozen=True)
class TrainOutcome:
    """A registered version and the training run that produced it."""

    version: VersionInfo
    result: TrainResult


def project_settings(project_dir: Path | None = None) -> Settings:
    """Settings for a project directory: the environment, then its spec's ``store.url``."""
    root = Path(project_dir) if project_dir is not None else Path.cwd()
    options = load_project_options(root / SPEC_FILE)
    return Settings.from_env(
        project_dir=root,
        spec_db_url=options.store.url if options.store else None,
        spec_allow_imports=options.allow_imports,
    )


def _settings(settings: Settings | None, spec: Spec | Path | str | None = None) -> Settings:
    """The given settings, else those of the project the spec file lives in (or the cwd)."""
    if settings is not None:
        return settings
    if isinstance(spec, str | Path):
        path = Path(spec)
        return project_settings(path if path.is_dir() else path.parent)
    return project_settings()


def _spec(spec: Spec | Path | str | None, settings: Settings) -> tuple[Spec, Path]:
    """The spec and the directory its relative data paths are relative to."""
    if isinstance(spec, Spec):
        return spec, settings.project_dir
    path = Path(spec) if spec is not None else settings.project_dir / SPEC_FILE
    loaded = load_spec(path)
    return loaded, (path if path.is_dir() else path.parent).resolve()


@contextmanager
def open_registry(settings: Settings | None = None) -> Iterator[Registry]:
    """Open the project's registry (database + artifacts), closing it afterwards."""
    from atoll.store.registry import Registry

    settings = _settings(settings)
    registry = Registry.open(settings.db_url, settings.artifact_root, actor=settings.actor)
    try:
        yield registry
    finally:
        registry.close()


def _sql_url(sql: SqlSource, settings: Settings) -> str:
    if sql.url is not None:
        return sql.url
    assert sql.url_env is not None  # the spec guarantees exactly one
    url = settings.variable(sql.url_env)
    if not url:
        raise SpecError(
            f"data.sql.url_env names {sql.url_env}, which is not set",
            problems=[("data.sql.url_env", None, f"environment variable {sql.url_env} is not set")],
        )
    return url


def read_data(spec: Spec, base_dir: Path, settings: Settings) -> pd.DataFrame:
    """Read the spec's training rows from its file(s) or SQL query."""
    from atoll.data.sources import read_frame, read_sql

    if spec.data.sql is not None:
        return read_sql(_sql_url(spec.data.sql, settings), spec.data.sql.query)
    assert spec.data.path is not None  # the spec guarantees exactly one source
    return read_frame(spec.data.path, base_dir, _numeric(spec.schema))


def _numeric(schema: Schema) -> list[str]:
    return [name for name, column in schema.columns.items() if column.type.is_numeric]


def train(
    spec: Spec | Path | str | None = None,
    *,
    settings: Settings | None = None,
    reporter: Reporter | None = None,
) -> TrainOutcome:
    """Read, validate, train, evaluate, package and register one model version.

    A version whose gates fail is registered with status ``gate_failed`` and
    cannot be promoted. The package is built in a temporary directory and
    registered in one transaction, so an interrupted run registers nothing.
    """
    from atoll.data.sources import fingerprint_files
    from atoll.model.train import check_spec, train_package

    settings = _settings(settings, spec)
    loaded, base_dir = _spec(spec, settings)
    check_spec(loaded)
    stages = Stages(reporter)
    with stages.stage("read") as note:
        frame = read_data(loaded, base_dir, settings)
        note.text = f"{len(frame):,} rows x {frame.shape[1]} columns"
    source = loaded.data.path or "sql"
    fingerprint = fingerprint_files(loaded.data.path, base_dir) if loaded.data.path else None
    with _scratch(settings) as scratch:
        result = train_package(
            loaded, frame, scratch / "package", stages, source, base_dir, fingerprint
        )
        with stages.stage("register") as note, open_registry(settings) as registry:
            version = registry.register(
                result.package_dir,
                loaded.name,
                status="ready" if result.passed_gates else "gate_failed",
                summary=_summary(result),
            )
            note.text = f"{version.name}@{version.version}"
    return TrainOutcome(version, result)


def _summary(result: TrainResult) -> dict[str, Any]:
    manifest = result.manifest
    return {
        "task": manifest["task"],
        "metrics": manifest["metrics"],
        "gates": manifest["gates"],
        "rows": manifest["lineage"]["rows"],
        "estimator": manifest["model"]["estimator"],
        "spec_digest": manifest["lineage"]["spec_digest"],
        "data_fingerprint": manifest["lineage"]["data_fingerprint"],
    }


@contextmanager
def _scratch(settings: Settings) -> Iterator[Path]:
    root = settings.project_dir / STATE_DIR / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale(root)
    path = Path(tempfile.mkdtemp(dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


STALE_SCRATCH_S = 24 * 3600
"""A scratch folder this old was left by a killed run; no live run takes a day to package."""


def _remove_stale(root: Path) -> None:
    cutoff = time.time() - STALE_SCRATCH_S
    for entry in root.iterdir():
        if entry.is_dir() and entry.stat().st_mtime < cutoff:
            shutil.rmtree(entry, ignore_errors=True)


def validate(
    data: Path | str,
    spec: Spec | Path | str | None = None,
    *,
    mode: Mode = "train",
    settings: Settings | None = None,
) -> ValidationReport:
    """Check a data file against the spec's columns.

    ``mode="train"`` requires every column, target included; ``"predict"``
    checks a file meant for scoring, which needs only the feature columns.
    """
    from atoll.data.sources import read_frame

    settings = _settings(settings, spec)
    loaded, _ = _spec(spec, settings)
    frame = read_frame(str(data), numeric=_numeric(loaded.schema))
    return loaded.schema.validate(frame, mode).report


def infer_schema(data: Path | str, target: str | None = None) -> dict[str, Column]:
    """Draft a ``columns:`` section from a data file."""
    from atoll.data.infer import infer_columns
    from atoll.data.sources import read_frame

    frame = read_frame(str(data))
    if target is not None and target not in frame.columns:
        raise DataError(f"target {target!r} is not a column of {data}", column=target)
    return infer_columns(frame, target)


def load(
    ref: ModelRef | str, *, settings: Settings | None = None, allow_imports: Sequence[str] = ()
) -> Predictor:
    """Load a registered version as a :class:`Predictor` (hashes verified)."""
    settings = _settings(settings)
    trusted = [*allow_imports, *settings.allow_imports]
    with open_registry(settings) as registry:
        return registry.load_predictor(ref, allow_imports=trusted)


def predict_file(
    ref: ModelRef | str,
    input_path: Path | str,
    output_path: Path | str,
    *,
    settings: Settings | None = None,
) -> int:
    """Score a small local file; write predictions (and probabilities) as CSV or Parquet."""
    from atoll.data.sources import read_frame

    predictor = load(ref, settings=settings)
    frame = read_frame(str(input_path), numeric=_numeric(predictor.schema))
    keep = [c for c in frame.columns if c != predictor.schema.target]
    prediction = predictor.predict(frame[keep])
    _write_predictions(frame, predictor, prediction, Path(output_path))
    return len(frame)


def _write_predictions(
    frame: pd.DataFrame, predictor: Predictor, prediction: Any, out: Path
) -> None:
    import pandas as pd

    columns: dict[str, Any] = {}
    for name, column in predictor.schema.columns.items():
        if column.role.value == "id" and name in frame.columns:
            columns[name] = frame[name].to_numpy()
    columns["prediction"] = prediction.predictions
    if prediction.probabilities is not None:
        for index, label in enumerate(prediction.classes):
            columns[f"probability_{label}"] = prediction.probabilities[:, index]
    result = pd.DataFrame(columns)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() in (".parquet", ".pq"):
        result.to_parquet(out, index=False)
    elif out.suffix.lower() == ".csv":
        result.to_csv(out, index=False)
    else:
        raise DataError(f"{out}: write predictions to a .csv or .parquet file", file=str(out))


def list_models(*, settings: Settings | None = None) -> list[ModelInfo]:
    with open_registry(settings) as registry:
        return registry.list_models()


def list_versions(name: str, *, settings: Settings | None = None) -> list[VersionInfo]:
    with open_registry(settings) as registry:
        return registry.list_versions(name)


def show(ref: ModelRef | str, *, settings: Settings | None = None) -> VersionInfo:
    """One version's record; a bare name means its latest version."""
    parsed = ModelRef.parse(str(ref))
    with open_registry(settings) as registry:
        if parsed.alias is None and parsed.version is None:
            return registry.list_versions(parsed.name)[-1]
        return registry.get_version(parsed)


def compare(refs: Sequence[str], *, settings: Settings | None = None) -> list[VersionInfo]:
    """Several versions side by side (the CLI renders their metrics as columns)."""
    return [show(ref, settings=settings) for ref in refs]


def promote(
    ref: ModelRef | str,
    alias: str = "production",
    *,
    force: bool = False,
    settings: Settings | None = None,
) -> VersionInfo:
    """Point ``alias`` at the version ``ref`` names; refused for gate failures unless forced."""
    with open_registry(settings) as registry:
        version = registry.get_version(ref) if "@" in str(ref) else None
        if version is None:
            raise PromotionError(f"name the version to promote, e.g. {ref}@3", model=str(ref))
        return registry.set_alias(version.name, alias, version.version, force=force)


def rollback(
    name: str, alias: str = "production", *, settings: Settings | None = None
) -> VersionInfo:
    """Move ``alias`` back to the version it pointed at before its last move."""
    with open_registry(settings) as registry:
        return registry.rollback(name, alias)


def tag(
    ref: ModelRef | str,
    tags: dict[str, str],
    *,
    remove: Sequence[str] = (),
    settings: Settings | None = None,
) -> VersionInfo:
    """Set ``tags`` on a version and remove the keys in ``remove``."""
    with open_registry(settings) as registry:
        version = registry.get_version(ref)
        if tags:
            version = registry.set_tags(version.name, version.version, tags)
        for key in remove:
            version = registry.remove_tag(version.name, version.version, key)
        return version


def history(name: str | None = None, *, settings: Settings | None = None) -> list[AuditEntry]:
    with open_registry(settings) as registry:
        return registry.audit_log(name)


def create_key(
    scopes: Sequence[str],
    models: Sequence[str] = (),
    *,
    expires_in: timedelta | None = None,
    description: str = "",
    rate_per_s: float | None = None,
    settings: Settings | None = None,
) -> tuple[ApiKey, str]:
    """A new API key and its plaintext, which is shown once and never stored."""
    from atoll.store.keys import KeyStore

    with open_registry(settings) as registry:
        store = KeyStore(registry.engine, actor=registry.actor)
        return store.create(
            scopes, models, expires_in=expires_in, description=description, rate_per_s=rate_per_s
        )


def list_keys(*, include_revoked: bool = True, settings: Settings | None = None) -> list[ApiKey]:
    from atoll.store.keys import KeyStore

    with open_registry(settings) as registry:
        return KeyStore(registry.engine).list(include_revoked=include_revoked)


def revoke_key(key_id: str, *, settings: Settings | None = None) -> ApiKey:
    """Revoke a key; every server stops accepting it within two seconds."""
    from atoll.store.keys import KeyStore

    with open_registry(settings) as registry:
        return KeyStore(registry.engine, actor=registry.actor).revoke(key_id)


def init_project(
    directory: Path | str, *, demo: bool = False, rows: int = 50_000, seed: int = 0
) -> Path:
    """Create a project directory with an ``atoll.yaml`` (and demo data with ``demo``)."""
    from importlib import resources

    root = Path(directory)
    spec_path = root / SPEC_FILE
    if spec_path.exists():
        raise AtollError(f"{spec_path} already exists; not overwriting it", file=str(spec_path))
    root.mkdir(parents=True, exist_ok=True)
    if demo:
        _write_demo_data(root, rows, seed)
        text = resources.files("atoll.data").joinpath("demo_spec.yaml").read_text()
    else:
        text = _STARTER_SPEC
    spec_path.write_text(text, encoding="utf-8")
    return spec_path


DEMO_DATA = "applications.csv"
DEMO_NEW_DATA = "new_applications.csv"
MIN_DEMO_ROWS = 500
"""Fewer rows leave too few defaults in the held-out part to evaluate anything."""


def _write_demo_data(root: Path, rows: int, seed: int) -> None:
    from atoll.data.synthetic import TARGET, credit_risk

    if rows < MIN_DEMO_ROWS:
        raise DataError(f"the demo needs at least {MIN_DEMO_ROWS} rows, not {rows}")
    data = root / "data"
    existing = [p for p in (data / DEMO_DATA, data / DEMO_NEW_DATA) if p.exists()]
    if existing:
        raise AtollError(f"{existing[0]} already exists; not overwriting it", file=str(existing[0]))
    data.mkdir(exist_ok=True)
    credit_risk(rows, seed).to_csv(data / DEMO_DATA, index=False)
    new = credit_risk(max(rows // 25, 100), seed + 1).drop(columns=[TARGET])
    new.to_csv(data / DEMO_NEW_DATA, index=False)


_STARTER_SPEC = """\
# atoll project spec. Draft the columns with: atoll schema infer data/train.csv
name: my-model
task: binary            # binary | multiclass | regression
target: label
data:
  path: data/train.csv  # CSV or Parquet file or glob, relative to this file
columns:
  label: {type: int, nullable: false}
features: []
model:
  estimator: sklearn.ensemble.HistGradientBoostingClassifier
  params: {}
split: {method: stratified, test_size: 0.2, seed: 0}
"""


@dataclass(frozen=True)
class DemoOutcome:
    """What ``atoll demo`` did: where, which version, and the scored file."""

    project_dir: Path
    trained: TrainOutcome
    promoted: VersionInfo | None
    scored_rows: int
    predictions: Path


def demo(
    directory: Path | str = "atoll-demo",
    *,
    rows: int = 50_000,
    seed: int = 0,
    reporter: Reporter | None = None,
    settings: Settings | None = None,
) -> DemoOutcome:
    """Generate demo data, train, register, promote to production and score a file.

    Runs again in an existing demo directory by training a new version on its data.
    """
    root = Path(directory).resolve()
    if not (root / SPEC_FILE).exists():
        init_project(root, demo=True, rows=rows, seed=seed)
    settings = settings or project_settings(root)
    trained = train(root / SPEC_FILE, settings=settings, reporter=reporter)
    promoted = None
    if trained.result.passed_gates:
        promoted = promote(f"{trained.version.name}@{trained.version.version}", settings=settings)
    out = root / "predictions.csv"
    ref = f"{trained.version.name}@{trained.version.version}"
    scored = predict_file(ref, root / "data" / DEMO_NEW_DATA, out, settings=settings)
    return DemoOutcome(root, trained, promoted, scored, out)


def demo_request_rows(directory: Path | str, n_rows: int = 1) -> list[dict[str, Any]]:
    """The first rows of the demo's new applications as JSON-ready records (for curl)."""
    import json

    from atoll.data.sources import read_frame

    frame = read_frame(str(Path(directory) / "data" / DEMO_NEW_DATA)).head(n_rows)
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records", date_format="iso"))
    return records
