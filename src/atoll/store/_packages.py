"""Moving model packages in and out of the artifact store, verified both ways.

The registry reads only one key of ``MANIFEST.json``: ``files``, a mapping of
relative POSIX path to sha256. Paths are checked against one canonical form
before any join, so a manifest cannot point outside its package or the cache.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

from atoll._hashing import sha256_bytes
from atoll.errors import IntegrityError, PackageError
from atoll.model.package import (
    MANIFEST,
    listed_files,
    read_manifest_bytes,
    referenced_blobs,
    verify_package,
)
from atoll.store.artifacts import ArtifactStore, check_digest


def parse_listing(manifest_bytes: bytes, where: str) -> dict[str, str]:
    """The ``files`` mapping of a stored manifest, every path and digest checked.

    Raises:
        PackageError: not a JSON object with a valid ``files`` mapping.
    """
    return listed_files(_parse(manifest_bytes, where), where)


def blobs_used(manifest_bytes: bytes, where: str) -> set[str]:
    """Every blob a stored package needs: its files and the blobs it refers to.

    Raises:
        PackageError: not a JSON object with valid ``files`` and ``references``.
    """
    manifest = _parse(manifest_bytes, where)
    listed = listed_files(manifest, where).values()
    return {*listed, *referenced_blobs(manifest, where).values()}


def check_references(manifest_bytes: bytes, artifacts: ArtifactStore, where: str) -> None:
    """Refuse a package that refers to a blob the store does not hold.

    Raises:
        PackageError: a referenced blob is missing.
    """
    for name, digest in referenced_blobs(_parse(manifest_bytes, where), where).items():
        if not artifacts.exists(digest):
            raise PackageError(
                f"{where} refers to {name} (sha256 {digest}), which the artifact store "
                "does not hold: register the package it comes from in this store first",
                file=name,
            )


def _parse(manifest_bytes: bytes, where: str) -> dict[str, Any]:
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError as exc:
        raise PackageError(f"{where}: {MANIFEST} is not valid JSON") from exc
    if not isinstance(manifest, dict):
        raise PackageError(f"{where}: {MANIFEST} is not a JSON object")
    return manifest


class BlobWriter(Protocol):
    """What storing a package writes to: the artifact store, or one batch of it."""

    def put_file(self, path: Path) -> str: ...

    def put_bytes(self, data: bytes) -> str: ...


def read_source(
    package_dir: Path, signing_key: bytes | None = None
) -> tuple[bytes, dict[str, str]]:
    """Verify a package directory (every file, and the signature given a key); read its manifest.

    Raises:
        PackageError: not a package, or a listed file missing or unsafe.
        IntegrityError: a file altered, unlisted, or a link leading outside;
            with a key, an unsigned or mis-signed manifest.
    """
    manifest_bytes = read_manifest_bytes(package_dir)  # read once: stored as verified
    manifest = verify_package(package_dir, signing_key=signing_key, manifest_bytes=manifest_bytes)
    return manifest_bytes, dict(manifest["files"])


def source_size(package_dir: Path, manifest_bytes: bytes, listing: dict[str, str]) -> int:
    """A package's size: its files' bytes and its manifest's."""
    return len(manifest_bytes) + sum((package_dir / name).stat().st_size for name in listing)


def stored_size(artifacts: ArtifactStore, manifest_digest: str) -> int:
    """The size of a stored package, as :func:`source_size` counts it, from its blobs.

    Raises:
        IntegrityError: the manifest or a file's blob is missing or altered.
    """
    manifest_bytes = artifacts.get_bytes(manifest_digest, label=MANIFEST)
    listing = parse_listing(manifest_bytes, f"package {manifest_digest}")
    return len(manifest_bytes) + sum(artifacts.size(digest) for digest in listing.values())


def store_source(
    package_dir: Path, manifest_bytes: bytes, listing: dict[str, str], artifacts: BlobWriter
) -> str:
    """Put every listed file, then the manifest, into the store; return the manifest's digest.

    Raises:
        IntegrityError: a file changed between verification and storing.
    """
    for name, digest in listing.items():
        if artifacts.put_file(package_dir / name) != digest:
            raise IntegrityError(
                f"{name} in package {package_dir} changed while it was being registered",
                file=name,
            )
    return artifacts.put_bytes(manifest_bytes)


def materialise(
    artifacts: ArtifactStore, manifest_digest: str, cache_root: Path
) -> tuple[Path, dict[str, Any]]:
    """A verified local copy of a stored package, in ``cache_root/<manifest_digest>/``.

    A fresh copy is assembled in a temp folder, each file verified as it is
    written, then renamed into place in one step. An existing copy is
    re-verified file by file before it is returned.

    Raises:
        IntegrityError: a blob or a cached file does not match its sha256, or
            the cached copy holds a file the manifest does not list.
    """
    manifest_bytes = artifacts.get_bytes(manifest_digest, label=MANIFEST)
    listing = parse_listing(manifest_bytes, f"package {manifest_digest}")
    final = cache_root / check_digest(manifest_digest)
    if not final.is_dir():
        _assemble(artifacts, manifest_digest, listing, final)
    return final, verify_copy(final, manifest_digest, listing)


def verify_copy(directory: Path, manifest_digest: str, listing: dict[str, str]) -> dict[str, Any]:
    """Check a materialised package: the manifest itself, every listed file, nothing else.

    Returns the verified manifest.

    Raises:
        IntegrityError: a file is missing, altered, a link, or not listed.
    """
    manifest = directory / MANIFEST
    data = _read_or_none(manifest)
    if data is None or sha256_bytes(data) != manifest_digest:
        raise IntegrityError(
            f"{MANIFEST} in the cached package {directory} was altered or removed",
            file=MANIFEST,
            digest=manifest_digest,
        )
    try:
        verified = verify_package(directory, manifest_bytes=data)  # the bytes just hashed
    except PackageError as exc:
        raise IntegrityError(f"the cached package {directory} is damaged: {exc}") from exc
    if verified["files"] != listing:
        raise IntegrityError(f"the cached package {directory} does not match its manifest")
    return verified


def _read_or_none(path: Path) -> bytes | None:
    """A regular file's bytes; None for a link, anything else, or nothing."""
    if path.is_symlink() or not path.is_file():
        return None
    try:
        return path.read_bytes()
    except OSError:  # removed meanwhile
        return None


def _assemble(
    artifacts: ArtifactStore, manifest_digest: str, listing: dict[str, str], final: Path
) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{manifest_digest[:16]}-"))
    try:
        for name, digest in listing.items():
            artifacts.copy_to(digest, tmp / name, label=name)
        artifacts.copy_to(manifest_digest, tmp / MANIFEST, label=MANIFEST)
        tmp.chmod(0o755)
        try:
            tmp.rename(final)
        except OSError:
            if not final.is_dir():  # not a concurrent fetch that got there first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
