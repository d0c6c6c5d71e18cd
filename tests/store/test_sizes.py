"""Each version's package size: recorded at registration, measured for older versions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from atoll.store import _packages
from atoll.store.artifacts import LocalArtifacts
from atoll.store.db import _alembic_config, create_engine_for
from atoll.store.registry import Registry
from atoll.store.tables import versions
from tests.conftest import MakePackage

FILES = {"model.txt": b"tree 0: leaf=0.5\n" * 500, "steps/scaler.json": b'{"mean": [1.0]}'}


def _expected(package_files: dict[str, bytes], manifest: bytes) -> int:
    return len(manifest) + sum(len(data) for data in package_files.values())


def test_the_size_is_recorded_at_registration_whatever_the_storage(
    registry: Registry, make_package: MakePackage
) -> None:
    package = make_package(FILES)
    size = _expected(FILES, (package / "MANIFEST.json").read_bytes())
    plain = registry.register(package, "m")
    packed = registry.register(package, "n", compress_blobs=True)
    assert plain.size_bytes == packed.size_bytes == size
    assert [v.size_bytes for v in registry.list_versions("m")] == [size]
    assert registry.get_version("n@1").size_bytes == size
    assert registry.artifacts.usage() < size  # the shared blobs are now compressed
    assert registry.audit_log("n")[0].detail["compressed"] is True


def test_an_older_version_without_a_size_is_measured_from_its_blobs(
    registry: Registry, make_package: MakePackage
) -> None:
    package = make_package(FILES)
    registry.register(package, "m", compress_blobs=True)
    with registry.engine.begin() as conn:  # as a version registered before sizes were kept
        conn.execute(sa.update(versions).values(size_bytes=None))
    legacy = registry.get_version("m@1")
    assert legacy.size_bytes is None
    measured = registry.with_size(legacy)
    assert measured.size_bytes == _expected(FILES, (package / "MANIFEST.json").read_bytes())
    # Its blobs gone, the size stays unknown rather than failing the listing.
    for blob in list(registry.artifacts.blobs()):
        registry.artifacts.remove(blob.digest, written_before=float("inf"))
    assert registry.with_size(legacy).size_bytes is None


def test_migrating_a_store_with_versions_leaves_their_sizes_to_be_measured(
    store_url: str, tmp_path: Path, make_package: MakePackage
) -> None:
    """A store at revision 0003 with a registered version upgrades to 0004 without losing it."""
    from alembic import command

    engine = create_engine_for(store_url)
    try:
        config = _alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0003")
        package = make_package(FILES)
        artifacts = LocalArtifacts(tmp_path / "artifacts")
        manifest_bytes, listing = _packages.read_source(package)
        digest = _packages.store_source(package, manifest_bytes, listing, artifacts)
        with engine.begin() as conn:  # a version row as revision 0003 knew it
            model_id = conn.execute(
                sa.text(
                    "INSERT INTO models (name, created_at, last_version) "
                    "VALUES ('m', :now, 1) RETURNING id"
                ),
                {"now": datetime.now(UTC).replace(tzinfo=None)},
            ).scalar_one()
            conn.execute(
                sa.text(
                    "INSERT INTO versions (model_id, version, status, manifest_digest, "
                    "summary, created_at, created_by) "
                    "VALUES (:model, 1, 'ready', :digest, '{}', :now, 'old')"
                ),
                {
                    "model": model_id,
                    "digest": digest,
                    "now": datetime.now(UTC).replace(tzinfo=None),
                },
            )
    finally:
        engine.dispose()
    with Registry.open(store_url, tmp_path / "artifacts") as registry:
        legacy = registry.get_version("m@1")
        assert legacy.size_bytes is None
        size = len(manifest_bytes) + sum(len(data) for data in FILES.values())
        assert registry.with_size(legacy).size_bytes == size
        assert registry.register(package, "m").size_bytes == size
