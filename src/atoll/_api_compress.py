"""``atoll.api.compress``: the smallest representation of a version within an accuracy budget.

Kept apart from :mod:`atoll.api` (which re-exports it) so that module stays a
readable size; the registry and settings helpers come from :mod:`atoll._api_base`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atoll._api_base import numeric_columns, open_registry, scratch, settings_or_project
from atoll.errors import SpecError
from atoll.spec import SPEC_FILE, load_project_options
from atoll.types import ModelRef

if TYPE_CHECKING:
    import pandas as pd

    from atoll.model.compress import CompressReport
    from atoll.settings import Settings
    from atoll.spec_compress import CompressSpec
    from atoll.store.registry import Registry, VersionInfo


@dataclass(frozen=True)
class CompressOutcome:
    """What ``atoll compress`` measured, and the version it registered (None on a dry run).

    The report's ``package_dir`` is a scratch copy, gone once this returns.
    """

    parent: VersionInfo
    report: CompressReport
    version: VersionInfo | None


def compress(
    ref: ModelRef | str,
    *,
    max_metric_drop: float | None = None,
    metric: str | None = None,
    target: str | None = None,
    data: Path | str | None = None,
    dry_run: bool = False,
    settings: Settings | None = None,
) -> CompressOutcome:
    """Register the smallest representation of a version that stays within the accuracy budget.

    Candidates (ONNX, fp16/int8 weights, fewer trees) are scored on the
    package's hold-out rows (or ``data``, a file with the target column); the
    winner becomes a new version whose lineage names ``ref`` as its parent and
    whose tag ``compressed_from`` holds the parent's version number. It is
    registered ``gate_failed`` when its parent is, or when its hold-out metrics
    fail one of the parent's gates. Arguments left None take the project
    spec's ``compress:`` section.

    Raises:
        CompressionError: no candidate qualifies; nothing is registered and the
            error's ``report`` holds what each one cost.
        MissingDependencyError: the install lacks ``atoll[full]`` (ONNX export, metrics).
    """
    from atoll._extras import COMPRESSING, require

    require(*COMPRESSING)  # before the import below, which needs it
    from atoll.model.compress import compress_package

    settings = settings_or_project(settings)
    overrides = {"max_metric_drop": max_metric_drop, "metric": metric, "target": target}
    options = _compress_options(settings, overrides)
    with open_registry(settings) as registry, scratch(settings) as work:
        parent = registry.get_version(ref)
        directory = registry.fetch_package(f"{parent.name}@{parent.version}")
        frame, source = _holdout_rows(registry, directory, data, work)
        lineage = {"name": parent.name, "version": parent.version}
        report = compress_package(
            directory,
            frame,
            options,
            work,
            parent={**lineage, "manifest_digest": parent.manifest_digest},
            holdout_source=source,
            allow_imports=settings.allow_imports,
        )
        version = None if dry_run else _register_compressed(registry, settings, parent, report)
    return CompressOutcome(parent, report, version)


def _compress_options(settings: Settings, overrides: dict[str, Any]) -> CompressSpec:
    """The spec's ``compress:`` section with the given (non-None) values over it, validated."""
    from pydantic import ValidationError

    from atoll.spec_compress import CompressSpec

    spec = load_project_options(settings.project_dir / SPEC_FILE).compress
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return CompressSpec.model_validate({**spec.model_dump(), **given})
    except ValidationError as exc:
        problems: list[tuple[str, int | None, str]] = [
            (f"compress.{'.'.join(map(str, e['loc']))}", None, e["msg"]) for e in exc.errors()
        ]
        raise SpecError("invalid compress options", problems=problems) from None


def _holdout_rows(
    registry: Registry, directory: Path, data: Path | str | None, scratch: Path
) -> tuple[pd.DataFrame, str]:
    """The rows to evaluate on: ``data`` when given, else the package's hold-out.

    A compressed package refers to its parent's hold-out: that blob is copied
    (verified) from the artifact store into ``scratch``.
    """
    from atoll.data.sources import read_frame
    from atoll.model.holdout import FILE, read_holdout
    from atoll.model.package import read_manifest
    from atoll.model.predictor import schema_from_manifest

    manifest = read_manifest(directory)
    if data is None:

        def shared(name: str, digest: str) -> Path:
            registry.artifacts.copy_to(digest, scratch / name, label=name)
            return scratch / name

        return read_holdout(directory, manifest, shared), FILE
    schema = schema_from_manifest(manifest)
    return read_frame(str(data), numeric=numeric_columns(schema)), str(data)


def _register_compressed(
    registry: Registry, settings: Settings, parent: VersionInfo, report: CompressReport
) -> VersionInfo:
    """Register the winner: ``gate_failed`` when its parent is, or when it fails a gate itself.

    Its gates were judged on its hold-out metrics (``manifest["gates"]``); its
    ``metrics`` are the parent's, so ``models compare`` sets the two side by
    side on the same rows, and the hold-out metrics are in ``compression``.
    """
    from atoll.model.package import read_manifest, sign_package

    assert report.package_dir is not None  # a report without a winner raised already
    if settings.signing_key is not None:
        sign_package(report.package_dir, settings.signing_key)
    manifest = read_manifest(report.package_dir)
    compression = manifest["compression"]
    summary = {
        **parent.summary,
        "metrics": manifest["metrics"],
        "gates": manifest["gates"],
        "compression": {**compression, "parent": f"{parent.name}@{parent.version}"},
    }
    passed = parent.status != "gate_failed" and manifest["gates"]["passed"]
    return registry.register(
        report.package_dir,
        parent.name,
        status="ready" if passed else "gate_failed",
        summary=summary,
        tags={"compressed_from": str(parent.version), "representation": str(report.selected)},
        compress_blobs=report.target == "archive",
    )
