"""The content-addressed artifact store: blobs named by their sha256.

A blob's name is its hash, so the store never takes a caller-chosen path: a
digest is checked to be 64 lowercase hex characters before it reaches a path
join, and the joined path must resolve inside the root. Writes are atomic
(temp file, fsync, rename), so a killed writer leaves at most a stray temp
file, never a half-written blob. Every read re-hashes the bytes, so a blob
altered on disk is refused rather than loaded.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

from atoll._hashing import sha256_bytes
from atoll.errors import IntegrityError

_DIGEST = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20
_TMP = ".tmp"


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is a sha256 hex digest, else raise.

    Raises:
        IntegrityError: anything but exactly 64 lowercase hex characters.
    """
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise IntegrityError(f"not a sha256 digest: {digest!r}", digest=str(digest)[:80])
    return digest


@runtime_checkable
class ArtifactStore(Protocol):
    """Where package files live, addressed by their sha256."""

    def put_file(self, path: Path) -> str:
        """Store a file's bytes; return their sha256."""
        ...

    def put_bytes(self, data: bytes) -> str:
        """Store ``data``; return its sha256."""
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


class LocalArtifacts:
    """Blobs in a local directory, laid out as ``root/ab/cdef...``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def put_file(self, path: Path) -> str:
        """Copy a file into the store, hashing while copying (one read of the source)."""
        with path.open("rb") as source, self._staging() as (handle, tmp):
            digest = hashlib.sha256()
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                handle.write(chunk)
            return self._commit(handle, tmp, digest.hexdigest())

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` and return its sha256."""
        with self._staging() as (handle, tmp):
            handle.write(data)
            return self._commit(handle, tmp, sha256_bytes(data))

    def get_bytes(self, digest: str, *, label: str | None = None) -> bytes:
        """Read a blob whole and check its sha256 before returning it.

        Raises:
            IntegrityError: a malformed digest, a missing blob, or altered bytes.
        """
        path = self._path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise _missing(digest, label) from None
        if sha256_bytes(data) != digest:
            raise _altered(digest, label)
        return data

    def copy_to(self, digest: str, dest: Path, *, label: str | None = None) -> None:
        """Stream a blob to ``dest`` atomically, verifying its sha256 on the way.

        ``dest`` only appears once the bytes are complete and verified.

        Raises:
            IntegrityError: a malformed digest, a missing blob, or altered bytes.
        """
        path = self._path(digest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                actual = _stream(path, handle, digest, label)
                _flush(handle)
            if actual != digest:
                raise _altered(digest, label)
            tmp.chmod(0o644)
            tmp.replace(dest)
        finally:
            tmp.unlink(missing_ok=True)

    def exists(self, digest: str) -> bool:
        """Whether a blob with this digest is stored."""
        return self._path(digest).is_file()

    def _path(self, digest: str) -> Path:
        check_digest(digest)
        path = self.root / digest[:2] / digest[2:]
        # Belt and braces: even a symlinked shard directory must not lead outside.
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise IntegrityError(
                f"blob {digest} resolves outside the artifact store", digest=digest
            )
        return path

    @contextmanager
    def _staging(self) -> Iterator[tuple[IO[bytes], Path]]:
        staging = self.root / _TMP
        staging.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=staging, suffix=".part")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle, tmp
        finally:
            tmp.unlink(missing_ok=True)

    def _commit(self, handle: IO[bytes], tmp: Path, digest: str) -> str:
        """Make the staged temp file the blob: fsync, read-only, atomic rename.

        The staging folder sits inside the root, so the rename never crosses a
        file system. An existing blob is replaced with the same bytes, which also
        heals one that was altered on disk.
        """
        _flush(handle)
        final = self._path(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp.chmod(0o444)
        tmp.replace(final)
        fsync_dir(final.parent)
        return digest


def _stream(path: Path, handle: IO[bytes], digest: str, label: str | None) -> str:
    hasher = hashlib.sha256()
    try:
        with path.open("rb") as source:
            while chunk := source.read(_CHUNK):
                hasher.update(chunk)
                handle.write(chunk)
    except FileNotFoundError:
        raise _missing(digest, label) from None
    return hasher.hexdigest()


def _flush(handle: IO[bytes]) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def fsync_dir(directory: Path) -> None:
    """Persist a rename: on POSIX the directory entry needs its own fsync."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _what(digest: str, label: str | None) -> str:
    return f"{label} (blob {digest})" if label else f"blob {digest}"


def _altered(digest: str, label: str | None) -> IntegrityError:
    return IntegrityError(
        f"{_what(digest, label)} was altered: its sha256 no longer matches",
        digest=digest,
        file=label,
    )


def _missing(digest: str, label: str | None) -> IntegrityError:
    return IntegrityError(
        f"{_what(digest, label)} is missing from the artifact store", digest=digest, file=label
    )
