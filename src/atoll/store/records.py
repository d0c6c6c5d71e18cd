"""What the registry hands out: frozen records, never database rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class VersionInfo:
    """One immutable registered version, with the aliases and tags it has now."""

    name: str
    version: int
    status: str
    manifest_digest: str
    summary: dict[str, Any]
    created_at: datetime
    created_by: str
    aliases: list[str]
    tags: dict[str, str]
    size_bytes: int | None = None
    """The package's size (its files and manifest); None if not known."""


@dataclass(frozen=True)
class ModelInfo:
    """A registered model: its newest version and where its aliases point."""

    name: str
    created_at: datetime
    latest_version: int
    aliases: dict[str, int]
    version_count: int


@dataclass(frozen=True)
class AuditEntry:
    """One recorded change: who did what to which model, and when."""

    at: datetime
    actor: str
    action: str
    model: str | None
    detail: dict[str, Any]
