"""Staged blob writes: everything is written aside first, then made visible in one go.

A package is stored as one :class:`Batch`: each file is streamed into the
store's staging folder (zstd-compressed on the way if asked), hashed as it is
written. Only when every file is staged is the quota checked and are the
files renamed into place. So a full disk, a quota, or a killed process
leaves no blob half-written and none of the package stored; the staging
folder is cleaned on the way out (and by ``atoll gc`` after a kill).
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO

from atoll._extras import require
from atoll._sizes import human_bytes
from atoll.errors import IntegrityError, StorageFullError

TMP_DIR = ".tmp"
"""Inside the root, so a rename into place never crosses a file system."""

ZSTD_SUFFIX = ".zst"
ZSTD_LEVEL = 10
"""Level 10 packs model files well at tens of MB/s; a package is written once, read often."""

_CHUNK = 1 << 20
_FULL = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})

Forms = Callable[[str], tuple[Path, Path]]
"""A digest's two possible paths in the store: as is, and compressed."""


@dataclass
class _Staged:
    tmp: Path
    compressed: bool

    @property
    def stored_bytes(self) -> int:
        return self.tmp.stat().st_size


class Batch:
    """Blobs staged for one write; :meth:`commit` stores them all, :meth:`discard` none."""

    def __init__(self, root: Path, compress: bool, max_bytes: int | None) -> None:
        self.root = root
        self.compress = compress
        self.max_bytes = max_bytes
        self._staged: dict[str, _Staged] = {}
        self._temps: list[Path] = []

    def put_file(self, path: Path) -> str:
        """Stage a file's bytes (one read, hashed while copied); return their sha256."""
        return self._add(*self._stage_file(path, self.compress, str(path)))

    def put_bytes(self, data: bytes) -> str:
        """Stage ``data``; return its sha256."""
        what = f"a blob of {len(data)} bytes"
        return self._add(*self._stage([data], len(data), self.compress, what))

    def _add(self, digest: str, staged: _Staged) -> str:
        self._staged.setdefault(digest, staged)  # the same bytes twice: stored once
        return digest

    def commit(self, forms: Forms, usage: Callable[[], int]) -> None:
        """Check the quota, then rename every staged blob into place.

        A blob already stored compressed stays compressed, so it is compressed
        here (while nothing is visible yet) if it was staged as is.

        If renaming fails partway (a full disk while creating a shard folder,
        an I/O error), the blobs this batch added are removed again, so the
        store is as it was. Blobs the store already held (in either form) are
        left as they are now: the same bytes, possibly rewritten or newly
        compressed, which every reader takes as before. A blob this batch
        added that a concurrent writer has since replaced with its own copy
        is left too: that writer counts on it.

        Raises:
            StorageFullError: the new blobs would take the store over its
                quota, or the disk filled up; nothing was added.
            IntegrityError: a staged blob changed before it was stored.
        """
        for digest, staged in list(self._staged.items()):
            if not staged.compressed and forms(digest)[1].exists():
                self._staged[digest] = self._recompress(digest, staged)
        self._check_quota(forms, usage)
        added: list[tuple[Path, int]] = []
        try:
            self._place(forms, added)
        except BaseException as exc:
            for path, inode in added:
                self._take_back(path, inode)
            if isinstance(exc, OSError) and exc.errno in _FULL:
                where = "a blob" if exc.filename is None else str(exc.filename)
                raise self._full(exc, where) from exc
            raise

    def _place(self, forms: Forms, added: list[tuple[Path, int]]) -> None:
        """Rename every staged blob into place; ``added`` collects the new ones (path, inode)."""
        folders = set()
        for digest, staged in self._staged.items():
            plain, packed = forms(digest)
            final = packed if staged.compressed else plain
            new = not plain.exists() and not packed.exists()
            final.parent.mkdir(parents=True, exist_ok=True)
            staged.tmp.chmod(0o444)
            os.utime(staged.tmp)  # gc's grace period counts from the moment a blob is stored
            inode = staged.tmp.stat().st_ino
            staged.tmp.replace(final)
            if new:
                added.append((final, inode))
            if staged.compressed:
                plain.unlink(missing_ok=True)  # the compressed copy is already in place
            folders.add(final.parent)
        for folder in folders:
            fsync_dir(folder)

    def _take_back(self, path: Path, inode: int) -> None:
        """Remove a blob this batch placed, unless another writer's copy has replaced it.

        Renamed aside first (as gc does), so a writer replacing it meanwhile
        keeps its copy in place; another copy taken aside is put back.
        """
        trash = self.root / TMP_DIR / f"{uuid.uuid4().hex}.trash"
        try:
            path.rename(trash)
        except OSError:
            return
        with suppress(OSError):
            if trash.stat().st_ino == inode:
                trash.unlink()
            else:
                trash.replace(path)  # content-addressed: the same bytes

    def discard(self) -> None:
        """Remove whatever is still staged (all of it, unless committed)."""
        for tmp in self._temps:
            tmp.unlink(missing_ok=True)
        self._temps.clear()
        self._staged.clear()

    def _stage_file(self, path: Path, compress: bool, what: str) -> tuple[str, _Staged]:
        with path.open("rb") as source:
            size = os.fstat(source.fileno()).st_size
            return self._stage(iter(partial(source.read, _CHUNK), b""), size, compress, what)

    def _stage(
        self, chunks: Iterable[bytes], size: int, compress: bool, what: str
    ) -> tuple[str, _Staged]:
        staging = self.root / TMP_DIR
        hasher = hashlib.sha256()
        try:
            staging.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=staging, suffix=".part")
            tmp = Path(name)
            self._temps.append(tmp)
            with os.fdopen(fd, "wb") as handle:
                _write(chunks, handle, hasher, size if compress else None, what)
        except OSError as exc:
            if exc.errno in _FULL:
                raise self._full(exc, what) from exc
            raise
        return hasher.hexdigest(), _Staged(tmp, compress)

    def _recompress(self, digest: str, staged: _Staged) -> _Staged:
        """The staged blob compressed; its bytes re-hashed on the way must still be ``digest``."""
        again, packed = self._stage_file(staged.tmp, True, f"blob {digest}")
        if again != digest:
            raise IntegrityError(
                f"blob {digest} changed in the staging folder before it was stored "
                f"(its bytes now hash to {again}); nothing was stored",
                digest=digest,
            )
        return packed

    def _check_quota(self, forms: Forms, usage: Callable[[], int]) -> None:
        if self.max_bytes is None:
            return
        new = sum(
            staged.stored_bytes
            for digest, staged in self._staged.items()
            if not any(path.exists() for path in forms(digest))
        )
        if not new:
            return
        used = usage()
        if used + new > self.max_bytes:
            raise StorageFullError(
                f"the artifact store {self.root} is over its quota: it holds "
                f"{human_bytes(used)} and this write adds {human_bytes(new)}, more than the "
                f"quota of {human_bytes(self.max_bytes)} (store.max_bytes in atoll.yaml or "
                "ATOLL_STORE_MAX_BYTES); nothing was stored. Free space with "
                "`atoll gc --keep-last N`, or raise the quota",
                quota_bytes=self.max_bytes,
                store_bytes=used,
                package_bytes=new,
            )

    def _full(self, exc: OSError, what: str) -> StorageFullError:
        return StorageFullError(
            f"the artifact store {self.root} ran out of space ({exc.strerror}) while "
            f"writing {what}; nothing was stored",
            errno=exc.errno,
            file=what,
        )


def _write(
    chunks: Iterable[bytes],
    handle: IO[bytes],
    hasher: hashlib._Hash,
    compress_size: int | None,
    what: str,
) -> None:
    """Copy ``chunks`` to ``handle`` (through zstd when ``compress_size`` is set), hashing them."""
    if compress_size is None:
        for chunk in chunks:
            hasher.update(chunk)
            handle.write(chunk)
    else:
        require("zstandard")
        import zstandard

        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        try:
            with compressor.stream_writer(handle, size=compress_size, closefd=False) as sink:
                for chunk in chunks:
                    hasher.update(chunk)
                    sink.write(chunk)
        except zstandard.ZstdError as exc:  # the declared size no longer matches
            raise IntegrityError(f"{what} changed while it was being stored") from exc
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
