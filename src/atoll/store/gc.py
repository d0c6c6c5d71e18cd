"""Garbage collection: retire old versions, then remove the blobs no live version lists.

Two phases. *Retiring* (with ``keep_last``): per model, one transaction locks
the model's row (as :meth:`Registry.set_alias` does), reads where the aliases
point *inside* that transaction, and marks the versions beyond the newest
``keep_last`` that no alias names as ``deleted``, with an audit entry each.
``set_alias`` refuses a deleted version in its own transaction, so a promotion
racing gc either lands first (and its version is kept) or is refused.

*Sweeping*, after that commit: every blob that no non-deleted version lists
(manifest, files, and the blobs its manifest refers to) is removed, as are
cached copies of packages no live version has and temp files killed writers
left. Blobs written within the
grace period are left alone: they may belong to a registration that has
stored its files but not yet committed its version.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from atoll.errors import IntegrityError, PackageError, RegistryError
from atoll.store import _packages
from atoll.store import _queries as q
from atoll.store.db import run_transaction
from atoll.store.registry import DELETED
from atoll.store.tables import aliases, models, versions

if TYPE_CHECKING:
    from atoll.store.registry import Registry

GRACE_S = 3600.0
"""Blobs younger than this are never swept: no registration takes an hour to commit."""

_CACHED = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class GcReport:
    """What a gc run removed (or, with ``dry_run``, would remove)."""

    dry_run: bool
    deleted_versions: list[str] = field(default_factory=list)
    blobs_removed: int = 0
    bytes_freed: int = 0
    staging_files_removed: int = 0
    cache_copies_removed: int = 0


def collect_garbage(
    registry: Registry,
    *,
    keep_last: int | None = None,
    dry_run: bool = False,
    grace_s: float = GRACE_S,
) -> GcReport:
    """Retire versions beyond the newest ``keep_last`` of each model, then sweep.

    Args:
        registry: the open registry.
        keep_last: keep this many newest versions of each model (plus every
            version an alias names); None retires nothing and only sweeps.
        dry_run: change nothing; report what would go.
        grace_s: leave blobs and temp files written in the last ``grace_s`` seconds.

    Raises:
        RegistryError: ``keep_last`` is negative.
        IntegrityError: a live version's manifest is missing or altered (then
            no blob is removed: what it lists is unknown).
    """
    if keep_last is not None and keep_last < 0:
        raise RegistryError(f"keep_last must be 0 or more, not {keep_last}")
    cutoff = time.time() - grace_s
    retired = _retire_all(registry, keep_last, dry_run) if keep_last is not None else []
    live_manifests, live = _live_digests(registry, {ref for ref, _ in retired})
    # A digest stored both as is and compressed is one blob, of both files' bytes.
    doomed: dict[str, int] = {}
    for blob in registry.artifacts.blobs():
        if blob.digest not in live and blob.modified <= cutoff:
            doomed[blob.digest] = doomed.get(blob.digest, 0) + blob.stored_bytes
    caches = _stale_cache_copies(registry, live_manifests, cutoff)
    names = [f"{name}@{version}" for (name, version), _ in retired]
    if dry_run:
        return GcReport(
            dry_run=True,
            deleted_versions=names,
            blobs_removed=len(doomed),
            bytes_freed=sum(doomed.values()),
            staging_files_removed=registry.artifacts.clean_staging(
                written_before=cutoff, dry_run=True
            ),
            cache_copies_removed=len(caches),
        )
    removals = [registry.artifacts.remove(digest, written_before=cutoff) for digest in doomed]
    for copy in caches:
        shutil.rmtree(copy, ignore_errors=True)
    return GcReport(
        dry_run=False,
        deleted_versions=names,
        blobs_removed=sum(1 for removal in removals if removal.removed),
        bytes_freed=sum(removal.bytes_freed for removal in removals),
        staging_files_removed=registry.artifacts.clean_staging(written_before=cutoff),
        cache_copies_removed=len(caches),
    )


def _retire_all(
    registry: Registry, keep_last: int, dry_run: bool
) -> list[tuple[tuple[str, int], str]]:
    """``((name, version), manifest digest)`` of each retired version, model by model."""
    retired: list[tuple[tuple[str, int], str]] = []
    for model in registry.list_models():

        def work(conn: Connection, name: str = model.name) -> list[tuple[int, str]]:
            return _retire(conn, name, keep_last, dry_run, registry.actor)

        done = run_transaction(registry.engine, work, read_only=dry_run, retry=registry.retry)
        retired.extend(((model.name, version), digest) for version, digest in done)
    return retired


def _retire(
    conn: Connection, name: str, keep_last: int, dry_run: bool, actor: str
) -> list[tuple[int, str]]:
    model_id = q.model_id(conn, name, lock=not dry_run)
    rows = conn.execute(
        sa.select(versions.c.version, versions.c.manifest_digest)
        .where(versions.c.model_id == model_id, versions.c.status != DELETED)
        .order_by(versions.c.version.desc())
    ).all()
    aliased = set(
        conn.execute(sa.select(aliases.c.version).where(aliases.c.model_id == model_id)).scalars()
    )
    doomed = [(row.version, row.manifest_digest) for row in rows[keep_last:]]
    doomed = sorted((v, d) for v, d in doomed if v not in aliased)
    if dry_run or not doomed:
        return doomed
    conn.execute(
        sa.update(versions)
        .where(versions.c.model_id == model_id, versions.c.version.in_([v for v, _ in doomed]))
        .values(status=DELETED)
    )
    for version, digest in doomed:
        detail = {"version": version, "manifest_digest": digest, "keep_last": keep_last}
        q.add_audit(conn, actor, "gc_delete", name, detail)
    return doomed


def _live_digests(registry: Registry, retired: set[tuple[str, int]]) -> tuple[set[str], set[str]]:
    """The manifests of every version not deleted (nor in ``retired``), and every blob they list."""

    def work(conn: Connection) -> list[tuple[str, int, str]]:
        query = (
            sa.select(models.c.name, versions.c.version, versions.c.manifest_digest)
            .join(models, models.c.id == versions.c.model_id)
            .where(versions.c.status != DELETED)
        )
        return [(row.name, row.version, row.manifest_digest) for row in conn.execute(query)]

    rows = run_transaction(registry.engine, work, read_only=True, retry=registry.retry)
    manifests = {digest for name, version, digest in rows if (name, version) not in retired}
    live = set(manifests)
    read: set[str] = set()  # versions that share a package share a manifest: read it once
    for name, version, digest in rows:
        if digest in manifests and digest not in read:
            live.update(_listed(registry, name, version, digest))
            read.add(digest)
    return manifests, live


def _listed(registry: Registry, name: str, version: int, digest: str) -> set[str]:
    try:
        manifest = registry.artifacts.get_bytes(digest, label="MANIFEST.json")
        return _packages.blobs_used(manifest, f"package {digest}")
    except PackageError as exc:  # IntegrityError included
        raise IntegrityError(
            f"gc stopped before removing any blob: the manifest of {name}@{version} "
            f"cannot be read ({exc}), so what it lists is unknown",
            model=name,
            version=version,
        ) from exc


def _stale_cache_copies(registry: Registry, live: set[str], cutoff: float) -> list[str]:
    """Cached package copies no live version has, and assembly folders killed fetches left."""
    root = registry.cache_root
    if not root.is_dir():
        return []
    stale = []
    for entry in root.iterdir():
        if not entry.is_dir() or entry.is_symlink():
            continue
        orphan = _CACHED.fullmatch(entry.name) is not None and entry.name not in live
        leftover = entry.name.startswith(".")
        # A copy fetched just now may be of a version committed after the live set was read.
        if (orphan or leftover) and entry.stat().st_mtime <= cutoff:
            stale.append(str(entry))
    return stale
