"""The registry's SQL, one small function per statement, each run on a caller's connection.

Every function here runs inside a transaction the registry opened, so a
sequence of them commits or rolls back as one. Rows are turned into
:mod:`atoll.store.records` before they leave this module.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from atoll.errors import NotFoundError, RegistryError
from atoll.store.records import AuditEntry, ModelInfo, VersionInfo
from atoll.store.tables import aliases, audit, models, tags, utcnow, versions
from atoll.types import ModelRef

_ALIAS_MOVES = ("set_alias", "rollback")


def _insert(conn: Connection, table: sa.Table) -> Any:
    """The dialect's INSERT, which knows ``ON CONFLICT``."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise RegistryError(f"the registry does not support the {dialect} database")


def ensure_model(conn: Connection, name: str) -> int:
    """The id of model ``name``, creating its row if it is new (race-free)."""
    row = {"name": name, "created_at": utcnow(), "last_version": 0}
    conn.execute(
        _insert(conn, models).values(**row).on_conflict_do_nothing(index_elements=["name"])
    )
    return model_id(conn, name)


def model_id(conn: Connection, name: str, *, lock: bool = False) -> int:
    """The id of model ``name``; ``lock`` holds its row until commit (PostgreSQL).

    Raises:
        NotFoundError: the model is not registered.
    """
    query = sa.select(models.c.id).where(models.c.name == name)
    found = conn.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if found is None:
        raise NotFoundError(f"model {name!r} is not registered", model=name)
    return int(found)


def next_version(conn: Connection, model: int) -> int:
    """Bump and return the model's version counter: atomic, no read-then-write gap."""
    bump = (
        sa.update(models)
        .where(models.c.id == model)
        .values(last_version=models.c.last_version + 1)
        .returning(models.c.last_version)
    )
    return int(conn.execute(bump).scalar_one())


def insert_version(
    conn: Connection,
    model: int,
    version: int,
    status: str,
    digest: str,
    summary: dict[str, Any],
    actor: str,
    size_bytes: int | None = None,
) -> None:
    """Record one version row."""
    conn.execute(
        versions.insert().values(
            model_id=model,
            version=version,
            status=status,
            manifest_digest=digest,
            summary=summary,
            created_at=utcnow(),
            created_by=actor,
            size_bytes=size_bytes,
        )
    )


def _version_id(conn: Connection, model: int, version: int) -> int:
    query = sa.select(versions.c.id).where(
        versions.c.model_id == model, versions.c.version == version
    )
    return int(conn.execute(query).scalar_one())


def upsert_tags(conn: Connection, model: int, version: int, values: dict[str, str]) -> None:
    """Add or overwrite tags on a version."""
    if not values:
        return
    vid = _version_id(conn, model, version)
    stmt = _insert(conn, tags)
    stmt = stmt.on_conflict_do_update(
        index_elements=["version_id", "key"], set_={"value": stmt.excluded.value}
    )
    conn.execute(stmt, [{"version_id": vid, "key": k, "value": v} for k, v in values.items()])


def delete_tag(conn: Connection, model: int, version: int, key: str) -> None:
    """Remove one tag from a version."""
    vid = _version_id(conn, model, version)
    conn.execute(tags.delete().where(tags.c.version_id == vid, tags.c.key == key))


def add_audit(
    conn: Connection, actor: str, action: str, model: str | None, detail: dict[str, Any]
) -> None:
    """Append one entry to the audit log."""
    conn.execute(
        audit.insert().values(at=utcnow(), actor=actor, action=action, model=model, detail=detail)
    )


def load_versions(
    conn: Connection, name: str, model: int, version: int | None = None
) -> list[VersionInfo]:
    """The model's versions (or just ``version``) with their aliases and tags, oldest first."""
    query = sa.select(versions).where(versions.c.model_id == model).order_by(versions.c.version)
    if version is not None:
        query = query.where(versions.c.version == version)
    rows = conn.execute(query).all()
    by_version: dict[int, list[str]] = {}
    for alias, target in _aliases(conn, model).items():
        by_version.setdefault(target, []).append(alias)
    tag_query = (
        sa.select(tags.c.version_id, tags.c.key, tags.c.value)
        .join(versions, versions.c.id == tags.c.version_id)
        .where(versions.c.model_id == model)
        .order_by(tags.c.key)
    )
    by_id: dict[int, dict[str, str]] = {}
    for vid, key, value in conn.execute(tag_query):
        by_id.setdefault(vid, {})[key] = value
    return [
        VersionInfo(
            name=name,
            version=row.version,
            status=row.status,
            manifest_digest=row.manifest_digest,
            summary=dict(row.summary),
            created_at=row.created_at,
            created_by=row.created_by,
            aliases=by_version.get(row.version, []),
            tags=by_id.get(row.id, {}),
            size_bytes=row.size_bytes,
        )
        for row in rows
    ]


def one_version(conn: Connection, name: str, model: int, version: int) -> VersionInfo:
    """One version of a model.

    Raises:
        NotFoundError: the model has no such version (the message gives the latest).
    """
    found = load_versions(conn, name, model, version)
    if found:
        return found[0]
    latest = conn.execute(sa.select(models.c.last_version).where(models.c.id == model)).scalar()
    hint = f"the latest is {latest}" if latest else "it has no versions yet"
    raise NotFoundError(
        f"model {name!r} has no version {version}: {hint}", model=name, version=version
    )


def _aliases(conn: Connection, model: int) -> dict[str, int]:
    query = (
        sa.select(aliases.c.alias, aliases.c.version)
        .where(aliases.c.model_id == model)
        .order_by(aliases.c.alias)
    )
    return {alias: int(version) for alias, version in conn.execute(query)}


def alias_version(conn: Connection, model: int, alias: str) -> int | None:
    """Where ``alias`` points now, or None if the model does not have it."""
    query = sa.select(aliases.c.version).where(
        aliases.c.model_id == model, aliases.c.alias == alias
    )
    found = conn.execute(query).scalar_one_or_none()
    return None if found is None else int(found)


def resolve(conn: Connection, ref: ModelRef, default_alias: str) -> tuple[int, int]:
    """``(model id, version)`` for a reference; a bare name means ``default_alias``.

    Raises:
        NotFoundError: unknown model, or unknown alias (the message lists the
            model's aliases). An unknown version is left to :func:`one_version`.
    """
    model = model_id(conn, ref.name)
    if ref.version is not None:
        return model, ref.version
    alias = ref.alias or default_alias
    target = alias_version(conn, model, alias)
    if target is None:
        existing = _aliases(conn, model)
        known = ", ".join(f"{a} -> {v}" for a, v in existing.items()) or "none yet"
        raise NotFoundError(
            f"model {ref.name!r} has no alias {alias!r} (its aliases: {known})",
            model=ref.name,
            alias=alias,
        )
    return model, target


def upsert_alias(conn: Connection, model: int, alias: str, version: int, actor: str) -> None:
    """Point ``alias`` at ``version``, creating the alias if it is new."""
    moved = {"version": version, "updated_at": utcnow(), "updated_by": actor}
    stmt = _insert(conn, aliases).values(model_id=model, alias=alias, **moved)
    conn.execute(stmt.on_conflict_do_update(index_elements=["model_id", "alias"], set_=moved))


def rollback_target(conn: Connection, name: str, alias: str) -> int | None:
    """Where ``alias`` pointed before its last move not yet undone, from the audit log.

    Walking the log backwards, each rollback cancels the move before it, so
    rollbacks stack like undo. None when the move to undo created the alias.

    Raises:
        RegistryError: the audit log holds no move of this alias to undo.
    """
    query = (
        sa.select(audit.c.action, audit.c.detail)
        .where(audit.c.model == name, audit.c.action.in_(_ALIAS_MOVES))
        .order_by(audit.c.id.desc())
    )
    undone = 0
    for action, detail in conn.execute(query):
        if detail.get("alias") != alias:
            continue
        if action == "rollback":
            undone += 1
        elif undone:
            undone -= 1
        else:
            previous = detail.get("from")
            return None if previous is None else int(previous)
    raise RegistryError(
        f"alias {alias!r} of model {name!r} has no recorded move left to roll back",
        model=name,
        alias=alias,
    )


def list_models(conn: Connection) -> list[ModelInfo]:
    """Every model with its newest version, version count and aliases, by name."""
    count_query = sa.select(versions.c.model_id, sa.func.count()).group_by(versions.c.model_id)
    counts = {int(model): int(n) for model, n in conn.execute(count_query)}
    rows = conn.execute(sa.select(models).order_by(models.c.name)).all()
    return [
        ModelInfo(
            name=row.name,
            created_at=row.created_at,
            latest_version=row.last_version,
            aliases=_aliases(conn, row.id),
            version_count=counts.get(row.id, 0),
        )
        for row in rows
    ]


def audit_entries(conn: Connection, name: str | None, limit: int) -> list[AuditEntry]:
    """The newest ``limit`` audit entries, newest first, for one model or all."""
    query = sa.select(audit).order_by(audit.c.id.desc()).limit(max(0, limit))
    if name is not None:
        query = query.where(audit.c.model == name)
    return [
        AuditEntry(at=r.at, actor=r.actor, action=r.action, model=r.model, detail=dict(r.detail))
        for r in conn.execute(query)
    ]
