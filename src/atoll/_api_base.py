"""What every part of :mod:`atoll.api` needs: settings, the registry, scratch folders.

:mod:`atoll.api` and its parts kept apart for size (:mod:`atoll._api_compress`,
:mod:`atoll._api_monitor`) all import these from here, one layer below them,
so none of them has to reach back into another.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from atoll.settings import STATE_DIR, Settings
from atoll.spec import SPEC_FILE, Spec, load_project_options

if TYPE_CHECKING:
    from atoll.schema import Schema
    from atoll.store.registry import Registry

STALE_SCRATCH_S = 24 * 3600
"""A scratch folder this old was left by a killed run; no live run takes a day to package."""


def project_settings(project_dir: Path | None = None) -> Settings:
    """Settings for a project directory: the environment, then its spec's ``store.url``."""
    root = Path(project_dir) if project_dir is not None else Path.cwd()
    options = load_project_options(root / SPEC_FILE)
    return Settings.from_env(
        project_dir=root,
        spec_db_url=options.store.url if options.store else None,
        spec_allow_imports=options.allow_imports,
        spec_max_bytes=options.store.max_bytes if options.store else None,
    )


def settings_or_project(
    settings: Settings | None, spec: Spec | Path | str | None = None
) -> Settings:
    """The given settings, else those of the project the spec file lives in (or the cwd)."""
    if settings is not None:
        return settings
    if isinstance(spec, str | Path):
        path = Path(spec)
        return project_settings(path if path.is_dir() else path.parent)
    return project_settings()


@contextmanager
def open_registry(settings: Settings | None = None) -> Iterator[Registry]:
    """Open the project's registry (database + artifacts), closing it afterwards."""
    from atoll.store.registry import Registry

    registry = Registry.from_settings(settings_or_project(settings))
    try:
        yield registry
    finally:
        registry.close()


@contextmanager
def scratch(settings: Settings) -> Iterator[Path]:
    """A fresh folder under the project's state directory, removed afterwards."""
    root = settings.project_dir / STATE_DIR / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale(root)
    path = Path(tempfile.mkdtemp(dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _remove_stale(root: Path) -> None:
    cutoff = time.time() - STALE_SCRATCH_S
    for entry in root.iterdir():
        if entry.is_dir() and entry.stat().st_mtime < cutoff:
            shutil.rmtree(entry, ignore_errors=True)


def numeric_columns(schema: Schema) -> list[str]:
    """The schema's number columns: what readers must parse as numbers."""
    return [name for name, column in schema.columns.items() if column.type.is_numeric]
