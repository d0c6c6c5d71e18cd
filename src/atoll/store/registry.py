"""The model registry: integer versions per model, movable aliases, tags, an audit log.

Package files go into the content-addressed artifact store first (all of them
or none, within the store's quota); only then does one database transaction
record the version. A process killed at any moment therefore leaves either a
whole version or none (at most some orphan blobs, which ``atoll gc`` removes).
Version numbers come from a per-model counter bumped with
``UPDATE ... RETURNING`` inside that transaction, so concurrent registrations
get distinct, consecutive numbers. Rows never leave this module: callers get
frozen dataclasses.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from sqlalchemy.engine import Connection, Engine

from atoll._hashing import canonical_json
from atoll.errors import IntegrityError, NotFoundError, PromotionError, RegistryError
from atoll.model.signing import check_signature
from atoll.store import _packages
from atoll.store import _queries as q
from atoll.store.artifacts import ArtifactStore, LocalArtifacts
from atoll.store.db import DEFAULT_RETRY, Retry, create_engine_for, migrate, run_transaction
from atoll.store.records import AuditEntry, ModelInfo, VersionInfo
from atoll.types import ModelRef, check_alias, check_model_name

if TYPE_CHECKING:
    from atoll.model.predictor import Predictor
    from atoll.settings import Settings

T = TypeVar("T")

STATUSES = frozenset({"ready", "gate_failed"})
"""The statuses a version is registered with."""
DELETED = "deleted"
"""The status ``atoll gc`` gives a version whose files it removes; the row stays, for history."""
DEFAULT_ALIAS = "production"
"""What a bare model name means when loading: ``name`` is ``name@production``."""

_MAX_TAG_KEY = 128


class Registry:
    """Models, versions, aliases and tags in the database; package files in the artifact store.

    Build it with :meth:`open`; close it (or use it as a context manager) to
    release the database connections.
    """

    def __init__(
        self,
        engine: Engine,
        artifacts: ArtifactStore,
        *,
        cache_root: Path,
        actor: str = "unknown",
        retry: Retry = DEFAULT_RETRY,
        signing_key: bytes | None = None,
    ) -> None:
        self.engine = engine
        self.artifacts = artifacts
        self.cache_root = cache_root
        self.actor = actor
        self.retry = retry
        self.signing_key = signing_key

    @classmethod
    def open(
        cls,
        url: str,
        artifact_root: Path,
        actor: str = "unknown",
        *,
        cache_root: Path | None = None,
        retry: Retry = DEFAULT_RETRY,
        max_bytes: int | None = None,
        signing_key: bytes | None = None,
    ) -> Registry:
        """Connect to the database at ``url`` and migrate it to the newest schema.

        Args:
            url: SQLAlchemy URL of the store (SQLite file or PostgreSQL).
            artifact_root: directory of the content-addressed artifact store.
            actor: who is acting, recorded in the audit log.
            cache_root: where verified package copies are materialised;
                defaults to ``<artifact_root>/../cache``.
            retry: how long to wait out a locked or unreachable database.
            max_bytes: quota of the artifact store; None for none.
            signing_key: accept and load only packages whose manifest is signed
                with this HMAC key; None checks no signatures.

        Raises:
            StoreUnavailableError: the database stayed locked or unreachable.
        """
        root = Path(artifact_root).absolute()
        engine = create_engine_for(url, busy_timeout_ms=_busy_timeout_ms(retry))
        try:
            migrate(engine, retry)
        except BaseException:
            engine.dispose()
            raise
        cache = Path(cache_root).absolute() if cache_root else root.parent / "cache"
        artifacts = LocalArtifacts(root, max_bytes=max_bytes)
        return cls(
            engine, artifacts, cache_root=cache, actor=actor, retry=retry, signing_key=signing_key
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Registry:
        """The registry the settings describe: database, artifacts, quota and signing key."""
        return cls.open(
            settings.db_url,
            settings.artifact_root,
            actor=settings.actor,
            max_bytes=settings.store_max_bytes,
            signing_key=settings.signing_key,
        )

    def close(self) -> None:
        """Release every pooled database connection."""
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def register(
        self,
        package_dir: Path,
        name: str,
        *,
        status: str = "ready",
        summary: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        compress_blobs: bool = False,
    ) -> VersionInfo:
        """Verify a package directory, store its files, and record it as the model's next version.

        Args:
            package_dir: the package directory (left as it is).
            name: the model's name.
            status: ``ready``, or ``gate_failed`` for a version that may not be promoted.
            summary: JSON facts shown by ``atoll models`` (metrics, estimator...).
            tags: key/value tags.
            compress_blobs: store the files zstd-compressed (reads decompress
                transparently; a blob once compressed stays compressed).

        Raises:
            PackageError: the directory is not a well-formed package, or it
                refers to a blob (``references``) the store does not hold.
            IntegrityError: a file does not match the sha256 in its manifest, or
                (with a signing key) the package is unsigned or mis-signed.
            StorageFullError: the files would take the store over its quota, or
                the disk is full; nothing is stored or recorded.
            RegistryError: an unknown status, bad tags, or a summary that is not JSON.
        """
        check_model_name(name)
        if status not in STATUSES:
            raise RegistryError(f"unknown status {status!r}: use one of {sorted(STATUSES)}")
        clean_tags = _check_tags(tags or {})
        clean_summary = _json_object(summary or {}, "summary")
        source = Path(package_dir)
        manifest_bytes, listing = _packages.read_source(source, self.signing_key)
        _packages.check_references(manifest_bytes, self.artifacts, f"package {source}")
        size = _packages.source_size(source, manifest_bytes, listing)
        with self.artifacts.batch(compress=compress_blobs) as batch:
            digest = _packages.store_source(source, manifest_bytes, listing, batch)

        def work(conn: Connection) -> VersionInfo:
            model_id = q.ensure_model(conn, name)
            version = q.next_version(conn, model_id)
            q.insert_version(
                conn, model_id, version, status, digest, clean_summary, self.actor, size
            )
            q.upsert_tags(conn, model_id, version, clean_tags)
            detail = {
                "version": version,
                "status": status,
                "manifest_digest": digest,
                "size_bytes": size,
                "compressed": compress_blobs,
            }
            q.add_audit(conn, self.actor, "register", name, detail)
            return q.one_version(conn, name, model_id, version)

        return self._write(work)

    def list_models(self) -> list[ModelInfo]:
        """Every registered model, by name."""
        return self._read(q.list_models)

    def list_versions(self, name: str) -> list[VersionInfo]:
        """Every version of a model, oldest first.

        Raises:
            NotFoundError: the model is not registered.
        """
        check_model_name(name)
        return self._read(lambda conn: q.load_versions(conn, name, q.model_id(conn, name)))

    def get_version(self, ref: ModelRef | str) -> VersionInfo:
        """Resolve ``name``, ``name@alias`` or ``name@3`` to one version.

        A bare name means the ``production`` alias.

        Raises:
            NotFoundError: unknown model, alias (the message lists the existing
                ones) or version.
        """
        parsed = _as_ref(ref)

        def work(conn: Connection) -> VersionInfo:
            model_id, version = q.resolve(conn, parsed, DEFAULT_ALIAS)
            return q.one_version(conn, parsed.name, model_id, version)

        return self._read(work)

    def set_alias(self, name: str, alias: str, version: int, *, force: bool = False) -> VersionInfo:
        """Point ``alias`` at ``version``, recording the move in the audit log.

        Raises:
            NotFoundError: unknown model or version.
            PromotionError: the version failed its gates and ``force`` is not set,
                or ``atoll gc`` deleted it (``force`` cannot bring it back).
        """
        check_model_name(name)
        check_alias(alias)

        def work(conn: Connection) -> VersionInfo:
            model_id = q.model_id(conn, name, lock=True)
            target = q.one_version(conn, name, model_id, version)
            if target.status == "gate_failed" and not force:
                raise PromotionError(
                    f"version {version} of model {name!r} failed its gates, so it may not "
                    f"take the alias {alias!r}; force it to override (the audit log records it)",
                    model=name,
                    alias=alias,
                    version=version,
                )
            forced = target.status == "gate_failed"
            return self._move_alias(conn, model_id, alias, target, "set_alias", forced)

        return self._write(work)

    def rollback(self, name: str, alias: str = DEFAULT_ALIAS) -> VersionInfo:
        """Undo the alias's last move: point it where it pointed before.

        Rollbacks stack like undo: a second rollback undoes the move before
        the one the first rollback undid.

        Raises:
            NotFoundError: unknown model, or the model has no such alias.
            RegistryError: the alias has no earlier target to go back to.
            PromotionError: ``atoll gc`` deleted the version it pointed to before.
        """
        check_model_name(name)
        check_alias(alias)

        def work(conn: Connection) -> VersionInfo:
            model_id = q.model_id(conn, name, lock=True)
            q.resolve(conn, ModelRef(name, alias=alias), DEFAULT_ALIAS)
            previous = q.rollback_target(conn, name, alias)
            if previous is None:
                raise RegistryError(
                    f"alias {alias!r} of model {name!r} has no earlier version to roll back to",
                    model=name,
                    alias=alias,
                )
            target = q.one_version(conn, name, model_id, previous)
            return self._move_alias(conn, model_id, alias, target, "rollback", False)

        return self._write(work)

    def set_tags(self, name: str, version: int, tags: Mapping[str, str]) -> VersionInfo:
        """Add or overwrite tags on a version (tags, unlike the version, may change).

        Raises:
            NotFoundError: unknown model or version.
            RegistryError: a key or value that is not a short string.
        """
        check_model_name(name)
        clean = _check_tags(tags)

        def work(conn: Connection) -> VersionInfo:
            model_id = q.model_id(conn, name)
            q.one_version(conn, name, model_id, version)
            q.upsert_tags(conn, model_id, version, clean)
            q.add_audit(conn, self.actor, "set_tags", name, {"version": version, "tags": clean})
            return q.one_version(conn, name, model_id, version)

        return self._write(work)

    def remove_tag(self, name: str, version: int, key: str) -> VersionInfo:
        """Remove one tag from a version.

        Raises:
            NotFoundError: unknown model or version, or the version has no such tag.
        """
        check_model_name(name)

        def work(conn: Connection) -> VersionInfo:
            model_id = q.model_id(conn, name)
            info = q.one_version(conn, name, model_id, version)
            if key not in info.tags:
                raise NotFoundError(
                    f"version {version} of model {name!r} has no tag {key!r}",
                    model=name,
                    version=version,
                )
            q.delete_tag(conn, model_id, version, key)
            q.add_audit(conn, self.actor, "remove_tag", name, {"version": version, "key": key})
            return q.one_version(conn, name, model_id, version)

        return self._write(work)

    def audit_log(self, name: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """The newest ``limit`` audit entries, for one model or for all."""
        if name is not None:
            check_model_name(name)
        return self._read(lambda conn: q.audit_entries(conn, name, limit))

    def fetch_package(self, ref: ModelRef | str) -> Path:
        """A verified local copy of a version's package directory.

        Every file is checked against its sha256 on every call, whether the
        copy is fresh or already in the cache; with a signing key, so is the
        manifest's signature.

        Raises:
            NotFoundError: the reference does not resolve, or gc deleted the version.
            IntegrityError: a stored blob or a cached file was altered, or (with
                a signing key) the package is unsigned or mis-signed.
        """
        return self._fetch(ref)[0]

    def load_predictor(self, ref: ModelRef | str, allow_imports: Sequence[str] = ()) -> Predictor:
        """The one load path: resolve, fetch and verify, then open the package.

        Args:
            ref: ``name``, ``name@alias`` or ``name@3``.
            allow_imports: module prefixes trusted for user steps and model
                types (a package cannot grant them).
        """
        from atoll.model.predictor import Predictor

        directory, manifest = self._fetch(ref)  # verified here: not hashed a second time
        return Predictor.from_verified(directory, manifest, allow_imports=allow_imports)

    def with_size(self, info: VersionInfo) -> VersionInfo:
        """``info`` with its package size, measured from the stored blobs if not recorded.

        Versions registered before sizes were recorded have none; a deleted
        version, or one whose blobs are gone, stays without one.
        """
        if info.size_bytes is not None or info.status == DELETED:
            return info
        try:
            size = _packages.stored_size(self.artifacts, info.manifest_digest)
        except IntegrityError:
            return info
        return dataclasses.replace(info, size_bytes=size)

    def _fetch(self, ref: ModelRef | str) -> tuple[Path, dict[str, Any]]:
        info = self.get_version(ref)
        if info.status == DELETED:
            raise _deleted(info)
        try:
            directory, manifest = _packages.materialise(
                self.artifacts, info.manifest_digest, self.cache_root
            )
        except IntegrityError as exc:
            # gc may have retired the version (and removed its blobs) since it was read.
            now = self.get_version(ModelRef(info.name, version=info.version))
            if now.status == DELETED:
                raise _deleted(now) from exc
            raise
        if self.signing_key is not None:
            check_signature(manifest, self.signing_key, f"package {info.name}@{info.version}")
        return directory, manifest

    def _move_alias(
        self,
        conn: Connection,
        model_id: int,
        alias: str,
        target: VersionInfo,
        action: str,
        forced: bool,
    ) -> VersionInfo:
        """Point ``alias`` at ``target`` (read in this transaction: gc and promotions serialize)."""
        _refuse_deleted(target, alias)
        name, version = target.name, target.version
        current = q.alias_version(conn, model_id, alias)
        if current != version:
            q.upsert_alias(conn, model_id, alias, version, self.actor)
            detail = {"alias": alias, "from": current, "to": version, "forced": forced}
            q.add_audit(conn, self.actor, action, name, detail)
        return q.one_version(conn, name, model_id, version)

    def _write(self, work: Callable[[Connection], T]) -> T:
        return run_transaction(self.engine, work, retry=self.retry)

    def _read(self, work: Callable[[Connection], T]) -> T:
        return run_transaction(self.engine, work, read_only=True, retry=self.retry)


def _deleted(info: VersionInfo) -> NotFoundError:
    return NotFoundError(
        f"version {info.version} of model {info.name!r} was deleted by `atoll gc`: "
        "its files are gone",
        model=info.name,
        version=info.version,
    )


def _refuse_deleted(info: VersionInfo, alias: str) -> None:
    """Checked in the transaction that moves the alias, so gc and a promotion serialize."""
    if info.status == DELETED:
        raise PromotionError(
            f"version {info.version} of model {info.name!r} was deleted by `atoll gc`, "
            f"so it may not take the alias {alias!r}",
            model=info.name,
            alias=alias,
            version=info.version,
        )


def _as_ref(ref: ModelRef | str) -> ModelRef:
    return ModelRef.parse(ref) if isinstance(ref, str) else ref


def _busy_timeout_ms(retry: Retry) -> int:
    """Wait for a SQLite lock at most 5 s per attempt, and well within the retry budget."""
    return max(50, int(min(5.0, retry.budget_s / 4) * 1000))


def _check_tags(tags: Mapping[str, str]) -> dict[str, str]:
    for key, value in tags.items():
        if not isinstance(key, str) or not 0 < len(key) <= _MAX_TAG_KEY or not key.isprintable():
            raise RegistryError(
                f"invalid tag key {key!r}: use 1-{_MAX_TAG_KEY} printable characters"
            )
        if not isinstance(value, str):
            raise RegistryError(f"tag {key!r} must have a string value, not {type(value).__name__}")
    return dict(tags)


def _json_object(value: Mapping[str, Any], what: str) -> dict[str, Any]:
    """A JSON-ready copy; NaN and infinities (JSON has neither) become null."""
    clean = _finite(dict(value))
    try:
        canonical_json(clean)
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"the {what} must be JSON-serialisable: {exc}") from exc
    result: dict[str, Any] = clean
    return result


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


__all__ = ["AuditEntry", "ModelInfo", "Registry", "VersionInfo"]
