"""Garbage collection: old versions retired, unreferenced blobs removed, aliases always kept."""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard

from atoll.errors import IntegrityError, NotFoundError, PromotionError, RegistryError
from atoll.store.artifacts import LocalArtifacts
from atoll.store.gc import collect_garbage
from atoll.store.registry import Registry
from tests.conftest import MakePackage

SHARED = {"steps/scaler.json": b'{"mean": [1.0, 2.0]}'}


def _register(registry: Registry, make_package: MakePackage, name: str, count: int) -> None:
    for index in range(1, count + 1):
        files = {**SHARED, "model.txt": f"{name} tree {index}\n".encode() * 50}
        registry.register(make_package(files, name=f"{name}-{index}"), name)


def _digests(registry: Registry) -> set[str]:
    return {blob.digest for blob in registry.artifacts.blobs()}


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _blob(registry: Registry, digest: str) -> Path:
    """Where a blob is stored as is."""
    root: Path = registry.artifacts.root  # type: ignore[attr-defined]
    return root / digest[:2] / digest[2:]


def test_keep_last_retires_old_versions_but_never_an_aliased_one(
    registry: Registry, make_package: MakePackage
) -> None:
    _register(registry, make_package, "m", 5)
    registry.set_alias("m", "production", 2)
    registry.set_alias("m", "staging", 5)
    fetched = registry.fetch_package("m@1")
    report = collect_garbage(registry, keep_last=2, grace_s=0)
    assert report.deleted_versions == ["m@1", "m@3"]
    assert report.blobs_removed == 4  # two model files, two manifests
    assert report.bytes_freed > 0
    assert report.cache_copies_removed == 1
    assert not fetched.exists()
    statuses = {v.version: v.status for v in registry.list_versions("m")}
    assert statuses == {1: "deleted", 2: "ready", 3: "deleted", 4: "ready", 5: "ready"}
    for kept in (2, 4, 5):
        assert (registry.fetch_package(f"m@{kept}") / "steps/scaler.json").read_bytes()
    audit = [e for e in registry.audit_log("m") if e.action == "gc_delete"]
    assert sorted(e.detail["version"] for e in audit) == [1, 3]
    assert {e.detail["keep_last"] for e in audit} == {2}


def test_a_deleted_version_cannot_be_loaded_promoted_or_rolled_back_to(
    registry: Registry, make_package: MakePackage
) -> None:
    _register(registry, make_package, "m", 3)
    registry.set_alias("m", "production", 1)
    registry.set_alias("m", "production", 3)
    collect_garbage(registry, keep_last=1, grace_s=0)
    with pytest.raises(NotFoundError, match=r"version 1 of model 'm' was deleted by `atoll gc`"):
        registry.fetch_package("m@1")
    with pytest.raises(PromotionError, match="deleted by `atoll gc`"):
        registry.set_alias("m", "staging", 2, force=True)
    with pytest.raises(PromotionError, match="deleted by `atoll gc`"):
        registry.rollback("m")
    assert registry.get_version("m@production").version == 3


def test_a_dry_run_changes_nothing_and_reports_what_a_run_would_do(
    registry: Registry, make_package: MakePackage
) -> None:
    _register(registry, make_package, "m", 3)
    _register(registry, make_package, "n", 2)
    before = _digests(registry)
    planned = collect_garbage(registry, keep_last=1, dry_run=True, grace_s=0)
    assert planned.dry_run
    assert _digests(registry) == before
    assert {v.status for v in registry.list_versions("m")} == {"ready"}
    assert not [e for e in registry.audit_log() if e.action == "gc_delete"]
    done = collect_garbage(registry, keep_last=1, grace_s=0)
    assert done.deleted_versions == planned.deleted_versions == ["m@1", "m@2", "n@1"]
    assert (done.blobs_removed, done.bytes_freed) == (planned.blobs_removed, planned.bytes_freed)
    assert len(_digests(registry)) == len(before) - done.blobs_removed


def test_without_keep_last_only_unreferenced_blobs_older_than_the_grace_go(
    registry: Registry, make_package: MakePackage
) -> None:
    _register(registry, make_package, "m", 2)
    live = _digests(registry)
    for blob in live:  # old, but referenced: kept
        _age(registry.artifacts.root / blob[:2] / blob[2:], 7200)  # type: ignore[attr-defined]
    orphan = registry.artifacts.put_bytes(b"left by a failed registration")
    _age(registry.artifacts.root / orphan[:2] / orphan[2:], 7200)  # type: ignore[attr-defined]
    # Stored just now, its version not yet committed: within the grace period.
    in_flight = registry.artifacts.put_bytes(b"a registration in progress", compress=True)
    staging = registry.artifacts.root / ".tmp"  # type: ignore[attr-defined]
    (staging / "killed.part").write_bytes(b"half a blob")
    _age(staging / "killed.part", 7200)
    (staging / "writing.part").write_bytes(b"being written")
    report = collect_garbage(registry)
    assert report.deleted_versions == []
    assert (report.blobs_removed, report.staging_files_removed) == (1, 1)
    assert _digests(registry) == live | {in_flight}
    assert [p.name for p in staging.iterdir()] == ["writing.part"]
    assert [v.status for v in registry.list_versions("m")] == ["ready", "ready"]


def test_keep_last_zero_keeps_only_aliased_versions(
    registry: Registry, make_package: MakePackage
) -> None:
    _register(registry, make_package, "m", 3)
    registry.set_alias("m", "production", 2)
    assert collect_garbage(registry, keep_last=0, grace_s=0).deleted_versions == ["m@1", "m@3"]
    assert registry.fetch_package("m@production").is_dir()
    with pytest.raises(RegistryError, match="0 or more"):
        collect_garbage(registry, keep_last=-1)


@pytest.mark.parametrize("damage", ["removed", "altered"])
def test_gc_stops_before_removing_anything_when_a_live_manifest_cannot_be_read(
    registry: Registry, make_package: MakePackage, damage: str
) -> None:
    """What an unreadable manifest lists is unknown, so no blob may go, not even an orphan."""
    _register(registry, make_package, "m", 2)
    orphan = registry.artifacts.put_bytes(b"left by a failed registration")
    manifest = _blob(registry, registry.get_version("m@2").manifest_digest)
    if damage == "removed":
        manifest.unlink()
    else:
        manifest.chmod(0o644)
        manifest.write_bytes(b'{"format_version": 1, "files": {}}')
    before = _digests(registry)
    assert orphan in before
    with pytest.raises(IntegrityError, match="gc stopped before removing any blob") as info:
        collect_garbage(registry, grace_s=0)
    assert "the manifest of m@2 cannot be read" in str(info.value)
    assert (info.value.context["model"], info.value.context["version"]) == ("m", 2)
    assert _digests(registry) == before
    assert [v.status for v in registry.list_versions("m")] == ["ready", "ready"]


def test_a_blob_in_both_forms_counts_once_and_an_empty_one_counts(registry: Registry) -> None:
    """A writer killed while compressing a blob leaves it twice; the empty blob frees no bytes."""
    data = b"left by a killed writer\n" * 200
    twice = registry.artifacts.put_bytes(data)
    packed = _blob(registry, twice).with_name(_blob(registry, twice).name + ".zst")
    packed.write_bytes(zstandard.ZstdCompressor().compress(data))
    empty = registry.artifacts.put_bytes(b"")
    staging = registry.artifacts.root / ".tmp"  # type: ignore[attr-defined]
    (staging / "killed.part").write_bytes(b"half a blob")
    on_disk = len(data) + packed.stat().st_size
    planned = collect_garbage(registry, dry_run=True, grace_s=0)
    assert (planned.blobs_removed, planned.bytes_freed) == (2, on_disk)
    assert planned.staging_files_removed == 1
    assert _digests(registry) == {twice, empty}
    assert (staging / "killed.part").exists()
    done = collect_garbage(registry, grace_s=0)
    assert (done.blobs_removed, done.bytes_freed, done.staging_files_removed) == (2, on_disk, 1)
    assert _digests(registry) == set()
    assert list(staging.iterdir()) == []


class _GcDuringFetch(LocalArtifacts):
    """A real store on which a real gc runs as a fetch first reads it: the race, made certain."""

    def __init__(self, root: Path, registry: Registry) -> None:
        super().__init__(root)
        self.registry = registry
        self.raced = False

    def get_bytes(self, digest: str, *, label: str | None = None) -> bytes:
        if not self.raced:
            self.raced = True
            collect_garbage(self.registry, keep_last=1, grace_s=0)
        return super().get_bytes(digest, label=label)


def test_a_version_gc_deletes_during_a_fetch_is_reported_as_deleted(
    registry: Registry, make_package: MakePackage
) -> None:
    _register(registry, make_package, "m", 2)
    registry.artifacts = _GcDuringFetch(registry.artifacts.root, registry)  # type: ignore[attr-defined]
    with pytest.raises(NotFoundError, match=r"version 1 of model 'm' was deleted by `atoll gc`"):
        registry.fetch_package("m@1")
    assert registry.get_version("m@1").status == "deleted"
    assert registry.fetch_package("m@2").is_dir()


def test_gc_racing_promotions_never_removes_the_promoted_version(
    registry: Registry, make_package: MakePackage
) -> None:
    """Threads move the alias at random while gc runs again and again: the alias always loads."""
    overlapped = refused = 0
    for round_ in range(3):
        name = f"race{round_}"
        _register(registry, make_package, name, 8)
        registry.set_alias(name, "production", 1)
        tally = _race(registry, name, seed=round_)
        assert tally.promoted > 0
        overlapped += tally.during_gc
        refused += tally.refused
        collect_garbage(registry, keep_last=1, grace_s=0)  # and once more, alone
        promoted = registry.get_version(f"{name}@production")
        assert promoted.status == "ready"
        assert registry.fetch_package(f"{name}@production").is_dir()
        ready = {v.version for v in registry.list_versions(name) if v.status == "ready"}
        assert ready == {promoted.version, 8}
    # Promotions really ran while gc did, and some were refused a version gc had just retired.
    assert overlapped > 0
    assert refused > 0


@dataclass
class _Tally:
    promoted: int = 0
    refused: int = 0
    during_gc: int = 0
    """Promotion attempts that began and ended while a gc run was in progress."""


def _race(registry: Registry, name: str, seed: int) -> _Tally:
    """Two threads promote at random until gc has run six times, keeping fewer each time."""
    tally = _Tally()
    lock = threading.Lock()
    collecting = threading.Event()
    progressed = threading.Event()
    finished = threading.Event()
    errors: list[BaseException] = []

    def promote(picks: random.Random) -> None:
        try:
            while not finished.is_set():
                began_in_gc = collecting.is_set()
                try:
                    registry.set_alias(name, "production", picks.randint(1, 7))
                    refused = False
                except PromotionError:  # gc got there first: refused
                    refused = True
                with lock:
                    tally.refused += refused
                    tally.promoted += not refused
                    tally.during_gc += began_in_gc and collecting.is_set()
                progressed.set()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [
        threading.Thread(target=promote, args=(random.Random(seed * 10 + n),)) for n in range(2)
    ]
    for thread in threads:
        thread.start()
    try:
        for keep_last in (6, 5, 4, 3, 2, 1):
            progressed.wait(timeout=60)  # the promoters are under way before each run
            progressed.clear()
            collecting.set()
            collect_garbage(registry, keep_last=keep_last, grace_s=0)
            collecting.clear()
    finally:
        finished.set()
        for thread in threads:
            thread.join()
    assert errors == []
    return tally
