"""The Python twin of every ``atoll`` command, and the one place that composes the layers.

The CLI is a thin face over these functions; each takes plain values and a
:class:`~atoll.settings.Settings` (built from the environment when omitted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atoll._api_base import STALE_SCRATCH_S as STALE_SCRATCH_S
from atoll._api_base import numeric_columns as _numeric
from atoll._api_base import open_registry as open_registry
from atoll._api_base import project_settings as project_settings
from atoll._api_base import scratch as _scratch
from atoll._api_base import settings_or_project as _settings
from atoll._api_compress import CompressOutcome as CompressOutcome
from atoll._api_compress import compress as compress
from atoll._api_monitor import monitor_alerts as monitor_alerts
from atoll._api_monitor import monitor_check as monitor_check
from atoll._api_monitor import monitor_html as monitor_html
from atoll._api_monitor import monitor_report as monitor_report
from atoll._extras import TRAINING, require
from atoll._progress import Reporter, Stages
from atoll.errors import AtollError, DataError, PromotionError, SpecError
from atoll.settings import Settings
from atoll.spec import SPEC_FILE, Spec, load_project_options, load_spec
from atoll.types import ModelRef

if TYPE_CHECKING:
    import pandas as pd

    from atoll.batch.feed import LogTarget
    from atoll.batch.job import BatchSummary, ProgressReporter
    from atoll.batch.model import ModelHandle
    from atoll.batch.plan import Plan
    from atoll.model.predictor import Predictor
    from atoll.model.train import TrainResult
    from atoll.schema import Column, Mode, ValidationReport
    from atoll.spec import SqlSource
    from atoll.store.gc import GcReport
    from atoll.store.keys import ApiKey
    from atoll.store.registry import AuditEntry, ModelInfo, Registry, VersionInfo


@dataclass(frozen=True)
class TrainOutcome:
    """A registered version and the training run that produced it."""

    version: VersionInfo
    result: TrainResult


def _spec(spec: Spec | Path | str | None, settings: Settings) -> tuple[Spec, Path]:
    """The spec and the directory its relative data paths are relative to."""
    if isinstance(spec, Spec):
        return spec, settings.project_dir
    path = Path(spec) if spec is not None else settings.project_dir / SPEC_FILE
    loaded = load_spec(path)
    return loaded, (path if path.is_dir() else path.parent).resolve()


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
    require(*TRAINING)  # before the imports below, which need it
    from atoll.data.sources import fingerprint_files
    from atoll.model.package import sign_package
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
        if settings.signing_key is not None:
            sign_package(result.package_dir, settings.signing_key)
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


def predict_batch(
    ref: ModelRef | str,
    input: str | Path,
    output: str | Path,
    *,
    format: str | None = None,
    workers: int = 1,
    engine: str = "local",
    address: str | None = None,
    chunk_rows: int = 100_000,
    passthrough: Sequence[str] | None = None,
    fail_on_invalid: bool = False,
    log: bool | None = None,
    reporter: ProgressReporter | None = None,
    settings: Settings | None = None,
) -> BatchSummary:
    """Score a file, a glob of files or a SQL query in chunks, in bounded memory.

    Each chunk is validated, wrangled and predicted by the model's
    :class:`Predictor`, as the server does. Rows that break the schema go to
    ``<stem>.quarantine.<format>`` beside the output with their reasons
    (``fail_on_invalid`` makes the first one fatal instead). The output is
    written atomically; a job killed midway and run again with the same
    arguments skips the chunks it had finished. A job that feeds the
    prediction log writes its rows there as the server does (role ``batch``,
    PII hashed or dropped, ``monitor.log.sample`` of them) and adds a
    ``prediction_id`` column to the output, for feedback.

    Args:
        ref: the model version, e.g. ``credit-risk@production``.
        input: a CSV or Parquet path or glob, or ``sql:QUERY`` (the URL comes
            from ``data.sql`` in the project's atoll.yaml).
        output: a ``.csv`` or ``.parquet`` file (or any name with ``format``).
        format: ``csv`` or ``parquet``; by default the output's suffix.
        workers: processes (or Dask workers for a LocalCluster) scoring at once.
        engine: ``local`` (processes on this machine) or ``dask``.
        address: a Dask scheduler, e.g. ``tcp://10.0.0.5:8786``; a LocalCluster if None.
        chunk_rows: rows per chunk; memory grows with it and with ``workers``.
        passthrough: input columns copied to the output as read; by default
            the schema's ``id`` columns.
        fail_on_invalid: stop at the first invalid row instead of quarantining.
        log: feed the prediction log (True), or not (False); None follows the
            spec: on when ``monitor.log.enabled`` and ``monitor.log.batch``.
        reporter: told about progress (the CLI shows a bar or log lines).
        settings: where the registry and the job record live.

    Raises:
        DataError: a missing, empty, unreadable or mis-shaped input, or an
            output that cannot be written; raised before any work when it can be.
        NotFoundError: the model reference does not resolve.
        MissingDependencyError: the install lacks pyarrow (or Dask for the dask engine).
    """
    require("pyarrow", "pandas", *(("dask", "distributed") if engine == "dask" else ()))
    from atoll.batch.engines import make_engine
    from atoll.batch.job import BatchRequest, run_batch
    from atoll.batch.sink import PartSink, output_format
    from atoll.store.jobs import JobStore

    settings = _settings(settings)
    if chunk_rows < 1:
        raise DataError(f"chunk_rows must be at least 1, not {chunk_rows}")
    out = Path(output)
    fmt = output_format(out, format)
    runner = make_engine(engine, workers, address)
    sink = PartSink(out, fmt)
    sink.lock()  # an unwritable or busy output fails before the input is fingerprinted
    try:
        with open_registry(settings) as registry:
            handle = _model_handle(registry, ref, settings)
            plan = _batch_plan(str(input), handle, chunk_rows, passthrough, settings)
            target = _log_target(registry, settings, log)
            request = BatchRequest(handle, plan, out, fmt, runner, engine, fail_on_invalid, target)
            return run_batch(request, jobs=JobStore(registry.engine), reporter=reporter, sink=sink)
    except BaseException:
        sink.abandon()  # a work folder that holds no parts goes
        raise


def _log_target(registry: Registry, settings: Settings, log: bool | None) -> LogTarget | None:
    """Where a batch job logs its rows: None unless ``log`` or the spec turns logging on."""
    from atoll.batch.feed import LogTarget
    from atoll.store.redact import PII_PEPPER_VARIABLE, Redactor

    spec = load_project_options(settings.project_dir / SPEC_FILE).monitor.log
    if not (log if log is not None else spec.enabled and spec.batch):
        return None
    redactor = Redactor(spec.pii, settings.variable(PII_PEPPER_VARIABLE))
    return LogTarget(registry.engine, redactor, spec.sample)


def _model_handle(registry: Registry, ref: ModelRef | str, settings: Settings) -> ModelHandle:
    """The version ``ref`` names now, fetched and verified once, as workers receive it."""
    from atoll.batch.model import ModelHandle

    version = registry.get_version(ref)
    directory = registry.fetch_package(f"{version.name}@{version.version}")
    return ModelHandle.from_package(
        directory,
        name=version.name,
        version=version.version,
        digest=version.manifest_digest,
        allow_imports=settings.allow_imports,
    )


def _batch_plan(
    source: str,
    handle: ModelHandle,
    chunk_rows: int,
    passthrough: Sequence[str] | None,
    settings: Settings,
) -> Plan:
    from atoll.batch.plan import plan_files, plan_sql

    schema = handle.schema()
    if not source.startswith("sql:"):
        return plan_files(source, schema, chunk_rows, passthrough)
    spec_path = settings.project_dir / SPEC_FILE
    sql = load_spec(spec_path).data.sql if spec_path.is_file() else None
    if sql is None:
        raise DataError(
            f"--input sql:QUERY reads the database named by data.sql in {spec_path}, which has none"
        )
    return plan_sql(
        _sql_url(sql, settings), source.removeprefix("sql:"), schema, chunk_rows, passthrough
    )


def list_models(*, settings: Settings | None = None) -> list[ModelInfo]:
    with open_registry(settings) as registry:
        return registry.list_models()


def list_versions(name: str, *, settings: Settings | None = None) -> list[VersionInfo]:
    """Every version of a model, oldest first, each with its package size."""
    with open_registry(settings) as registry:
        return [registry.with_size(v) for v in registry.list_versions(name)]


def show(ref: ModelRef | str, *, settings: Settings | None = None) -> VersionInfo:
    """One version's record; a bare name means its latest version."""
    parsed = ModelRef.parse(str(ref))
    with open_registry(settings) as registry:
        if parsed.alias is None and parsed.version is None:
            return registry.with_size(registry.list_versions(parsed.name)[-1])
        return registry.with_size(registry.get_version(parsed))


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
    require(*TRAINING)
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
    scored = predict_batch(ref, root / "data" / DEMO_NEW_DATA, out, settings=settings)
    return DemoOutcome(root, trained, promoted, scored.rows_scored, out)


def demo_request_rows(directory: Path | str, n_rows: int = 1) -> list[dict[str, Any]]:
    """The first rows of the demo's new applications as JSON-ready records (for curl)."""
    import json

    from atoll.data.sources import read_frame

    frame = read_frame(str(Path(directory) / "data" / DEMO_NEW_DATA)).head(n_rows)
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records", date_format="iso"))
    return records


def gc(
    *,
    keep_last: int | None = None,
    dry_run: bool = False,
    grace_s: float | None = None,
    settings: Settings | None = None,
) -> GcReport:
    """Delete old versions' files and every blob no version references.

    With ``keep_last``, each model keeps its newest ``keep_last`` versions and
    every version an alias points to; older ones are marked ``deleted`` (the
    audit log says so) and their files removed. Without it, only blobs that no
    version lists (left by deleted versions or failed writes) are removed.

    Args:
        keep_last: versions to keep per model, besides aliased ones; None keeps all.
        dry_run: change nothing; report what would be removed.
        grace_s: leave blobs written in the last ``grace_s`` seconds (default an
            hour): they may belong to a registration still in progress.
        settings: where the registry lives.
    """
    from atoll.store.gc import GRACE_S, collect_garbage

    grace = GRACE_S if grace_s is None else grace_s
    with open_registry(settings) as registry:
        return collect_garbage(registry, keep_last=keep_last, dry_run=dry_run, grace_s=grace)
