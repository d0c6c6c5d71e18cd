"""The content-addressed artifact store: blobs named by their sha256.

A blob's name is its hash, so the store never takes a caller-chosen path: a
digest is checked to be 64 lowercase hex characters before it reaches a path
join, and the joined path must resolve inside the root. Writes are staged and
atomic (temp file, fsync, rename; see :mod:`atoll.store._staging`), so a
killed or failed writer leaves at most a stray temp file, never a half-written
blob. A blob is stored as is (``ab/cdef...``) or zstd-compressed
(``ab/cdef....zst``); either way every read decompresses as it streams and
re-hashes the original bytes, so a blob altered on disk is refused rather
than loaded. Integrity is always about the original bytes.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import uuid
from collections.abc import Generator, Iterator
from contextlib import AbstractContextManager, closing, contextmanager, suppress
from pathlib import Path
from typing import IO, NamedTuple, Protocol, runtime_checkable

from atoll._extras import require
from atoll.errors import IntegrityError
from atoll.store._staging import TMP_DIR, ZSTD_SUFFIX, Batch, fsync_dir

_DIGEST = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20
_UNDECLARED_RATIO = 1024
"""Cap on what a zstd frame that does not declare its size may decompress to, per stored byte.

atoll writes every compressed blob with its size in the frame header, and a
read stops at that size. A frame without one was not written by atoll; rather
than trust it to end, a read stops at 1024 times its size on disk (1 MiB at
least), beyond what zstd reaches on model files, so a planted decompression
bomb costs at most that much memory or disk before it is refused.
"""


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is a sha256 hex digest, else raise.

    Raises:
        IntegrityError: anything but exactly 64 lowercase hex characters.
    """
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise IntegrityError(f"not a sha256 digest: {digest!r}", digest=str(digest)[:80])
    return digest


class BlobInfo(NamedTuple):
    """One stored blob as the disk sees it: what garbage collection decides on.

    A blob stored both as is and compressed (a writer killed between the two
    steps of compressing it) appears once per form.
    """

    digest: str
    stored_bytes: int
    modified: float


class Removal(NamedTuple):
    """What removing a blob did: whether any of its files went, and the bytes freed."""

    removed: bool
    bytes_freed: int


@runtime_checkable
class ArtifactStore(Protocol):
    """Where package files live, addressed by their sha256."""

    max_bytes: int | None

    def put_file(self, path: Path, *, compress: bool = False) -> str:
        """Store a file's bytes; return their sha256."""
        ...

    def put_bytes(self, data: bytes, *, compress: bool = False) -> str:
        """Store ``data``; return its sha256."""
        ...

    def batch(self, *, compress: bool = False) -> AbstractContextManager[Batch]:
        """Blobs staged together and stored together (or not at all), within the quota."""
        ...

    def get_bytes(self, digest: str, *, label: str | None = None) -> bytes:
        """Return the verified bytes of a blob (``label`` names it in errors)."""
        ...

    def copy_to(self, digest: str, dest: Path, *, label: str | None = None) -> None:
        """Write the verified bytes of a blob to ``dest``."""
        ...

    def exists(self, digest: str) -> bool:
        """Whether the blob is stored (not whether it is intact)."""
        ...

    def size(self, digest: str) -> int:
        """The blob's original size in bytes (before any compression)."""
        ...

    def usage(self) -> int:
        """Bytes the stored blobs take on disk."""
        ...

    def blobs(self) -> Iterator[BlobInfo]:
        """Every stored blob."""
        ...

    def remove(self, digest: str, *, written_before: float) -> Removal:
        """Delete a blob unless it was (re)written at or after ``written_before``."""
        ...

    def clean_staging(self, *, written_before: float, dry_run: bool = False) -> int:
        """Delete temp files left by killed writers (or, with ``dry_run``, count them); how many."""
        ...


class LocalArtifacts:
    """Blobs in a local directory, laid out as ``root/ab/cdef...`` (``.zst`` if compressed).

    Args:
        root: the store's directory.
        max_bytes: quota on the bytes the blobs take on disk; a write that
            would go over it fails and stores nothing.
    """

    def __init__(self, root: Path, *, max_bytes: int | None = None) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def put_file(self, path: Path, *, compress: bool = False) -> str:
        """Copy a file into the store, hashing while copying (one read of the source)."""
        with self.batch(compress=compress) as batch:
            return batch.put_file(path)

    def put_bytes(self, data: bytes, *, compress: bool = False) -> str:
        """Store ``data`` and return its sha256."""
        with self.batch(compress=compress) as batch:
            return batch.put_bytes(data)

    @contextmanager
    def batch(self, *, compress: bool = False) -> Iterator[Batch]:
        """Stage blobs, then check the quota and store them all; on any error store none.

        An existing blob is replaced with the same bytes, which also heals one
        that was altered on disk. A blob once compressed stays compressed.

        Raises:
            StorageFullError: over the quota, or the disk is full; nothing stored.
        """
        batch = Batch(self.root, compress, self.max_bytes)
        try:
            yield batch
            batch.commit(self._forms, self.usage)
        finally:
            batch.discard()

    def get_bytes(self, digest: str, *, label: str | None = None) -> bytes:
        """Read a blob whole and check its sha256 before returning it.

        Raises:
            IntegrityError: a malformed digest, a missing blob, or altered bytes.
        """
        chunks: list[bytes] = []
        hasher = hashlib.sha256()
        with closing(self._chunks(digest, label)) as source:
            for chunk in source:
                hasher.update(chunk)
                chunks.append(chunk)
        if hasher.hexdigest() != digest:
            raise _altered(digest, label)
        return b"".join(chunks)

    def copy_to(self, digest: str, dest: Path, *, label: str | None = None) -> None:
        """Stream a blob to ``dest`` atomically, verifying its sha256 on the way.

        ``dest`` only appears once the bytes are complete and verified; memory
        stays bounded whatever the blob's size.

        Raises:
            IntegrityError: a malformed digest, a missing blob, or altered bytes.
        """
        self._forms(digest)  # a malformed digest is refused before anything is created
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        tmp = Path(tmp_name)
        try:
            hasher = hashlib.sha256()
            # closing: a failed write (a full disk) closes the blob's file at once, not at gc.
            with os.fdopen(fd, "wb") as handle, closing(self._chunks(digest, label)) as chunks:
                for chunk in chunks:
                    hasher.update(chunk)
                    handle.write(chunk)
                _flush(handle)
            if hasher.hexdigest() != digest:
                raise _altered(digest, label)
            tmp.chmod(0o644)
            tmp.replace(dest)
        finally:
            tmp.unlink(missing_ok=True)

    def exists(self, digest: str) -> bool:
        """Whether a blob with this digest is stored (as is or compressed)."""
        return any(path.is_file() for path in self._forms(digest))

    def size(self, digest: str) -> int:
        """The original size of a blob: its file size, or the size its zstd frame declares.

        Raises:
            IntegrityError: a malformed digest or a missing blob.
        """
        plain, packed = self._forms(digest)
        with suppress(FileNotFoundError):
            return plain.stat().st_size
        try:
            with packed.open("rb") as handle:
                declared = _declared_size(handle.read(18))
        except FileNotFoundError:
            raise _missing(digest, None) from None
        if declared >= 0:
            return declared
        return sum(len(chunk) for chunk in self._chunks(digest, None))

    def usage(self) -> int:
        """Bytes on disk of every stored blob (staging files not counted)."""
        return sum(blob.stored_bytes for blob in self.blobs())

    def blobs(self) -> Iterator[BlobInfo]:
        """Every stored blob with its on-disk size and modification time."""
        if not self.root.is_dir():
            return
        for shard in os.scandir(self.root):
            if len(shard.name) != 2 or not shard.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(shard.path):
                digest = shard.name + entry.name.removesuffix(ZSTD_SUFFIX)
                if _DIGEST.fullmatch(digest) and entry.is_file(follow_symlinks=False):
                    stat = entry.stat(follow_symlinks=False)
                    yield BlobInfo(digest, stat.st_size, stat.st_mtime)

    def remove(self, digest: str, *, written_before: float) -> Removal:
        """Delete a blob unless a writer stored it at or after ``written_before``.

        The blob is first renamed aside, then its time is checked: a writer
        that stored the same bytes in the meantime either left its fresh file
        in place or had it renamed aside and put back. Content addressing makes
        putting back always safe. ``removed`` is true when a file of the blob
        went, even an empty one (which frees no bytes).
        """
        removed = False
        freed = 0
        trash_dir = self.root / TMP_DIR
        trash_dir.mkdir(parents=True, exist_ok=True)
        for path in self._forms(digest):
            trash = trash_dir / f"{uuid.uuid4().hex}.trash"
            try:
                path.rename(trash)
            except FileNotFoundError:
                continue
            stat = trash.stat()
            if stat.st_mtime > written_before:
                trash.replace(path)
            else:
                trash.unlink()
                removed = True
                freed += stat.st_size
        return Removal(removed, freed)

    def clean_staging(self, *, written_before: float, dry_run: bool = False) -> int:
        """Delete staging files last written before ``written_before``: what killed writers left.

        With ``dry_run`` nothing is deleted; the count is of what would be.
        """
        staging = self.root / TMP_DIR
        removed = 0
        if not staging.is_dir():
            return 0
        for entry in os.scandir(staging):
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime <= written_before:
                if not dry_run:
                    Path(entry.path).unlink(missing_ok=True)
                removed += 1
        return removed

    def _forms(self, digest: str) -> tuple[Path, Path]:
        """Where the blob lives as is, and compressed."""
        check_digest(digest)
        path = self.root / digest[:2] / digest[2:]
        # Belt and braces: even a symlinked shard directory must not lead outside.
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise IntegrityError(
                f"blob {digest} resolves outside the artifact store", digest=digest
            )
        return path, path.with_name(path.name + ZSTD_SUFFIX)

    def _chunks(self, digest: str, label: str | None) -> Generator[bytes, None, None]:
        """The blob's original bytes, decompressed as they stream (the file closed at the end).

        A compressed blob is read no further than the size its frame declares
        (or, declaring none, than :data:`_UNDECLARED_RATIO` times its size on
        disk): more is refused as altered, before it fills memory or a disk.
        zstandard is imported only for a compressed blob: the lean serving
        install has none and reads plain blobs without it.
        """
        plain, packed = self._forms(digest)
        for path, compressed in ((plain, False), (packed, True)):
            try:
                handle = path.open("rb")
            except FileNotFoundError:
                continue
            with handle:
                if compressed:
                    yield from _decompressed(handle, digest, label)
                else:
                    while chunk := handle.read(_CHUNK):
                        yield chunk
            return
        raise _missing(digest, label)


def _decompressed(
    handle: IO[bytes], digest: str, label: str | None
) -> Generator[bytes, None, None]:
    """A compressed blob's original bytes, refused past the size its frame allows."""
    require("zstandard")
    import zstandard

    limit = _read_limit(handle)
    source = zstandard.ZstdDecompressor().stream_reader(handle)
    produced = 0
    try:
        while chunk := source.read(_CHUNK):
            produced += len(chunk)
            if produced > limit:
                raise _oversized(digest, label, limit)
            yield chunk
    except zstandard.ZstdError:
        raise _altered(digest, label) from None


def _declared_size(header: bytes) -> int:
    """The size a zstd frame header declares; -1 for none (or no valid header)."""
    require("zstandard")
    import zstandard

    try:
        return int(zstandard.frame_content_size(header))
    except zstandard.ZstdError:
        return -1


def _read_limit(handle: IO[bytes]) -> int:
    """The most bytes a compressed blob may decompress to (the file left at its start)."""
    declared = _declared_size(handle.read(18))
    handle.seek(0)
    if declared >= 0:
        return declared
    return max(_CHUNK, _UNDECLARED_RATIO * os.fstat(handle.fileno()).st_size)


def _flush(handle: IO[bytes]) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _what(digest: str, label: str | None) -> str:
    return f"{label} (blob {digest})" if label else f"blob {digest}"


def _altered(digest: str, label: str | None) -> IntegrityError:
    return IntegrityError(
        f"{_what(digest, label)} was altered: its sha256 no longer matches",
        digest=digest,
        file=label,
    )


def _oversized(digest: str, label: str | None, limit: int) -> IntegrityError:
    return IntegrityError(
        f"{_what(digest, label)} was altered: it decompresses to more than {limit} bytes, "
        "the most its compressed form allows; refused before reading further",
        digest=digest,
        file=label,
    )


def _missing(digest: str, label: str | None) -> IntegrityError:
    return IntegrityError(
        f"{_what(digest, label)} is missing from the artifact store", digest=digest, file=label
    )


__all__ = ["ArtifactStore", "BlobInfo", "LocalArtifacts", "Removal", "check_digest", "fsync_dir"]
