"""Blobs compressed at rest: zstd on disk, the original bytes (and their sha256) on every read."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import zstandard

from atoll.errors import IntegrityError
from atoll.store.artifacts import LocalArtifacts, Removal

DATA = b"tree 0: split_feature=3 threshold=0.125 leaf_value=0.5\n" * 2000
DIGEST = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifacts:
    return LocalArtifacts(tmp_path / "blobs")


def _plain(store: LocalArtifacts, digest: str = DIGEST) -> Path:
    return store.root / digest[:2] / digest[2:]


def _packed(store: LocalArtifacts, digest: str = DIGEST) -> Path:
    return store.root / digest[:2] / f"{digest[2:]}.zst"


def _tamper(path: Path, data: bytes) -> None:
    path.chmod(0o644)
    path.write_bytes(data)


def test_a_compressed_blob_is_smaller_on_disk_and_reads_back_whole(
    store: LocalArtifacts, tmp_path: Path
) -> None:
    assert store.put_bytes(DATA, compress=True) == DIGEST
    assert not _plain(store).exists()
    on_disk = _packed(store).stat().st_size
    assert on_disk < len(DATA) // 10
    assert zstandard.ZstdDecompressor().decompress(_packed(store).read_bytes()) == DATA
    assert store.exists(DIGEST)
    assert store.size(DIGEST) == len(DATA)
    assert store.usage() == on_disk
    assert store.get_bytes(DIGEST) == DATA
    store.copy_to(DIGEST, tmp_path / "out" / "model.txt")
    assert (tmp_path / "out" / "model.txt").read_bytes() == DATA


def test_put_file_compresses_in_a_stream(store: LocalArtifacts, tmp_path: Path) -> None:
    big = os.urandom(1 << 16) * 40  # 2.5 MiB: several read chunks, and it compresses
    source = tmp_path / "model.bin"
    source.write_bytes(big)
    digest = store.put_file(source, compress=True)
    assert digest == hashlib.sha256(big).hexdigest()
    assert _packed(store, digest).stat().st_size < len(big)
    store.copy_to(digest, tmp_path / "copy.bin")
    assert (tmp_path / "copy.bin").read_bytes() == big
    assert list((store.root / ".tmp").iterdir()) == []


@pytest.mark.parametrize(
    "damage",
    [
        zstandard.ZstdCompressor().compress(DATA + b"evil"),  # valid zstd, other bytes
        b"not zstd at all",
        b"",
    ],
    ids=["other-content", "garbage", "truncated-to-nothing"],
)
def test_an_altered_compressed_blob_is_refused_on_every_read(
    store: LocalArtifacts, tmp_path: Path, damage: bytes
) -> None:
    store.put_bytes(DATA, compress=True)
    _tamper(_packed(store), damage)
    with pytest.raises(IntegrityError, match=f"model.txt.*{DIGEST}.*altered"):
        store.get_bytes(DIGEST, label="model.txt")
    dest = tmp_path / "out" / "model.txt"
    with pytest.raises(IntegrityError, match="altered"):
        store.copy_to(DIGEST, dest, label="model.txt")
    assert list(dest.parent.iterdir()) == []


def test_a_truncated_compressed_blob_is_refused(store: LocalArtifacts) -> None:
    store.put_bytes(DATA, compress=True)
    packed = _packed(store).read_bytes()
    _tamper(_packed(store), packed[: len(packed) // 2])
    with pytest.raises(IntegrityError, match="altered"):
        store.get_bytes(DIGEST)


def test_compressing_an_existing_blob_replaces_the_plain_copy(store: LocalArtifacts) -> None:
    store.put_bytes(DATA)
    plain_size = _plain(store).stat().st_size
    store.put_bytes(DATA, compress=True)
    assert not _plain(store).exists()
    assert store.usage() < plain_size
    assert [blob.digest for blob in store.blobs()] == [DIGEST]


def test_a_blob_once_compressed_stays_compressed_and_heals(store: LocalArtifacts) -> None:
    store.put_bytes(DATA, compress=True)
    _tamper(_packed(store), b"evil")
    store.put_bytes(DATA)  # a plain write of the same bytes: heals, in compressed form
    assert not _plain(store).exists()
    assert _packed(store).exists()
    assert store.get_bytes(DIGEST) == DATA


def test_a_batch_stores_all_of_its_blobs_or_none(store: LocalArtifacts) -> None:
    with pytest.raises(RuntimeError), store.batch(compress=True) as batch:
        batch.put_bytes(DATA)
        raise RuntimeError("the writer failed halfway")
    assert not store.exists(DIGEST)
    assert list((store.root / ".tmp").iterdir()) == []
    with store.batch(compress=True) as batch:
        assert batch.put_bytes(DATA) == DIGEST
        assert batch.put_bytes(b"manifest") == hashlib.sha256(b"manifest").hexdigest()
        assert not store.exists(DIGEST)  # staged, not visible until the batch ends
    assert store.get_bytes(DIGEST) == DATA


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "compressed"])
def test_remove_spares_a_blob_written_after_the_cutoff(
    store: LocalArtifacts, compress: bool
) -> None:
    store.put_bytes(DATA, compress=compress)
    written = _packed(store) if compress else _plain(store)
    before = written.stat().st_mtime
    # Rewritten since gc looked: spared.
    assert store.remove(DIGEST, written_before=before - 60) == Removal(False, 0)
    assert store.get_bytes(DIGEST) == DATA
    size = written.stat().st_size
    assert store.remove(DIGEST, written_before=before) == Removal(True, size)
    assert not store.exists(DIGEST)
    assert list((store.root / ".tmp").iterdir()) == []


def test_removing_an_empty_blob_reports_it_removed(store: LocalArtifacts) -> None:
    empty = store.put_bytes(b"")
    assert store.remove(empty, written_before=float("inf")) == Removal(True, 0)
    assert not store.exists(empty)


def test_a_decompression_bomb_is_refused_before_it_is_read_whole(
    store: LocalArtifacts, tmp_path: Path
) -> None:
    """A frame declaring no size, its hash even right: the read stops at 1024x its size on disk."""
    zeros = bytes(16 << 20)
    digest = hashlib.sha256(zeros).hexdigest()
    bomb = zstandard.ZstdCompressor(write_content_size=False).compress(zeros)
    assert 1024 * len(bomb) < len(zeros)  # well past the cap (and past its 1 MiB floor)
    _packed(store, digest).parent.mkdir(parents=True)
    _packed(store, digest).write_bytes(bomb)
    with pytest.raises(IntegrityError, match="decompresses to more than"):
        store.get_bytes(digest, label="model.bin")
    dest = tmp_path / "out" / "model.bin"
    with pytest.raises(IntegrityError, match="decompresses to more than"):
        store.copy_to(digest, dest)
    assert list(dest.parent.iterdir()) == []
    # The same bytes with their size declared read back whole.
    _packed(store, digest).write_bytes(zstandard.ZstdCompressor().compress(zeros))
    assert store.get_bytes(digest) == zeros


def test_a_frame_without_a_declared_size_within_the_cap_reads(store: LocalArtifacts) -> None:
    packed = zstandard.ZstdCompressor(write_content_size=False).compress(DATA)
    _packed(store).parent.mkdir(parents=True)
    _packed(store).write_bytes(packed)
    assert store.get_bytes(DIGEST) == DATA
    assert store.size(DIGEST) == len(DATA)


def test_copy_to_refuses_a_malformed_digest_before_creating_anything(
    store: LocalArtifacts, tmp_path: Path
) -> None:
    with pytest.raises(IntegrityError, match="not a sha256 digest"):
        store.copy_to("../../etc/passwd", tmp_path / "out" / "x")
    assert not (tmp_path / "out").exists()


def test_a_staged_blob_altered_before_it_is_compressed_is_refused(store: LocalArtifacts) -> None:
    """Storing bytes as is that the store holds compressed compresses the staged copy again."""
    store.put_bytes(DATA, compress=True)
    changed = f"blob {DIGEST} changed in the staging folder"
    with pytest.raises(IntegrityError, match=changed), store.batch() as batch:
        batch.put_bytes(DATA)
        (staged,) = (store.root / ".tmp").iterdir()
        staged.write_bytes(b"swapped while staged")
    assert store.get_bytes(DIGEST) == DATA
    assert list((store.root / ".tmp").iterdir()) == []


def test_a_batch_failing_while_placing_its_blobs_takes_back_the_new_ones(
    store: LocalArtifacts,
) -> None:
    """Only the blobs the batch added go again; one the store already held stays."""
    held = store.put_bytes(b"already stored")
    new = {hashlib.sha256(b"new %d" % n).hexdigest(): b"new %d" % n for n in range(50)}
    # The last blob's shard folder cannot be created: a file is in its way.
    last = next(digest for digest in new if digest[:2] != held[:2])
    added = next(digest for digest in new if digest[:2] not in (last[:2], held[:2]))
    (store.root / last[:2]).write_bytes(b"in the way")
    with pytest.raises(OSError), store.batch() as batch:
        batch.put_bytes(b"already stored")
        batch.put_bytes(new[added])
        batch.put_bytes(new[last])
    assert not store.exists(added)
    assert store.get_bytes(held) == b"already stored"
    assert [blob.digest for blob in store.blobs()] == [held]
    assert list((store.root / ".tmp").iterdir()) == []
