from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from atoll.errors import IntegrityError
from atoll.store.artifacts import ArtifactStore, LocalArtifacts, check_digest

DATA = b"some model bytes\n" * 100
DIGEST = hashlib.sha256(DATA).hexdigest()

BAD_DIGESTS = [
    "",
    "../../etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "%252e%252e%252f",
    "..\\..\\windows",
    "/etc/passwd",
    "//proc/self/root",
    DIGEST.upper(),
    DIGEST[:-1],
    DIGEST + "0",
    DIGEST[:-1] + "\x00",
    "g" * 64,
    DIGEST[:2] + "/" + DIGEST[3:],
    DIGEST + "\n",
]


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifacts:
    return LocalArtifacts(tmp_path / "blobs")


def _blob(store: LocalArtifacts, digest: str) -> Path:
    return store.root / digest[:2] / digest[2:]


def _tamper(path: Path, data: bytes) -> None:
    path.chmod(0o644)
    path.write_bytes(data)


def test_local_artifacts_is_an_artifact_store(store: LocalArtifacts) -> None:
    assert isinstance(store, ArtifactStore)


def test_put_bytes_then_get_bytes_round_trips_under_the_sharded_layout(
    store: LocalArtifacts,
) -> None:
    assert store.put_bytes(DATA) == DIGEST
    assert _blob(store, DIGEST).read_bytes() == DATA
    assert store.exists(DIGEST)
    assert store.get_bytes(DIGEST) == DATA


def test_put_file_hashes_like_put_bytes_and_deduplicates(
    store: LocalArtifacts, tmp_path: Path
) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(DATA)
    assert store.put_file(source) == DIGEST
    assert store.put_bytes(DATA) == DIGEST
    blobs = [p for p in store.root.rglob("*") if p.is_file()]
    assert blobs == [_blob(store, DIGEST)]


def test_writes_are_atomic_and_leave_no_temp_files(store: LocalArtifacts, tmp_path: Path) -> None:
    store.put_bytes(DATA)
    store.put_bytes(b"other")
    assert list((store.root / ".tmp").iterdir()) == []
    # A stored blob is read-only: it is never edited in place, only replaced whole.
    assert _blob(store, DIGEST).stat().st_mode & 0o222 == 0


def test_a_half_written_temp_file_is_not_a_blob(store: LocalArtifacts) -> None:
    # What a writer killed mid-write leaves behind: a stray part file, never a blob.
    (store.root / ".tmp").mkdir(parents=True)
    (store.root / ".tmp" / "abc.part").write_bytes(DATA[:10])
    assert not store.exists(DIGEST)
    with pytest.raises(IntegrityError, match="missing"):
        store.get_bytes(DIGEST)


def test_tampered_blob_is_refused_on_every_read(store: LocalArtifacts, tmp_path: Path) -> None:
    store.put_bytes(DATA)
    _tamper(_blob(store, DIGEST), DATA + b"evil")
    with pytest.raises(IntegrityError, match=DIGEST):
        store.get_bytes(DIGEST)
    dest = tmp_path / "out" / "model.bin"
    with pytest.raises(IntegrityError, match=r"model\.bin") as info:
        store.copy_to(DIGEST, dest, label="model.bin")
    assert DIGEST in str(info.value)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_putting_the_same_bytes_again_heals_a_tampered_blob(store: LocalArtifacts) -> None:
    store.put_bytes(DATA)
    _tamper(_blob(store, DIGEST), b"evil")
    store.put_bytes(DATA)
    assert store.get_bytes(DIGEST) == DATA


def test_copy_to_writes_verified_bytes(store: LocalArtifacts, tmp_path: Path) -> None:
    store.put_bytes(DATA)
    dest = tmp_path / "deep" / "er" / "model.bin"
    store.copy_to(DIGEST, dest)
    assert dest.read_bytes() == DATA


def test_missing_blob_names_the_digest_and_label(store: LocalArtifacts, tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match=f"model.txt.*{DIGEST}.*missing"):
        store.get_bytes(DIGEST, label="model.txt")
    with pytest.raises(IntegrityError, match="missing"):
        store.copy_to(DIGEST, tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_malformed_digests_never_reach_the_file_system(
    store: LocalArtifacts, tmp_path: Path, digest: str
) -> None:
    with pytest.raises(IntegrityError, match="not a sha256 digest"):
        check_digest(digest)
    with pytest.raises(IntegrityError):
        store.get_bytes(digest)
    with pytest.raises(IntegrityError):
        store.exists(digest)
    with pytest.raises(IntegrityError):
        store.copy_to(digest, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_a_shard_symlinked_outside_the_root_is_refused(
    store: LocalArtifacts, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / DIGEST[2:]).write_bytes(DATA)
    store.root.mkdir(parents=True)
    (store.root / DIGEST[:2]).symlink_to(outside, target_is_directory=True)
    with pytest.raises(IntegrityError, match="outside"):
        store.get_bytes(DIGEST)
