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
from typing import Any

from atoll._hashing import sha256_file
from atoll.errors import IntegrityError, PackageError
from atoll.model.package import MANIFEST, listed_files, verify_package
from atoll.store.artifacts import ArtifactStore, check_digest


def parse_listing(manifest_bytes: bytes, where: str) -> dict[str, str]:
    """The ``files`` mapping of a stored manifest, every path and digest checked.

    Raises:
        PackageError: not a JSON object with a valid ``files`` mapping.
    """
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError as exc:
        raise PackageError(f"{where}: {MANIFEST} is not valid JSON") from exc
    if not isinstance(manifest, dict):
        raise PackageError(f"{where}: {MANIFEST} is not a JSON object")
    return listed_files(manifest, where)


def read_source(package_dir: Path) -> tuple[bytes, dict[str, str]]:
    """Verify a package directory (every file against its manifest) and read its manifest.

    Raises:
        PackageError: not a package, or a listed file missing or unsafe.
        IntegrityError: a file altered, unlisted, or a link leading outside.
    """
    manifest = verify_package(package_dir)
    return (package_dir / MANIFEST).read_bytes(), dict(manifest["files"])


def store_source(
    package_dir: Path, manifest_bytes: bytes, listing: dict[str, str], artifacts: ArtifactStore
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
    if manifest.is_symlink() or not manifest.is_file() or sha256_file(manifest) != manifest_digest:
        raise IntegrityError(
            f"{MANIFEST} in the cached package {directory} was altered or removed",
            file=MANIFEST,
            digest=manifest_digest,
        )
    try:
        verified = verify_package(directory)
    except PackageError as exc:
        raise IntegrityError(f"the cached package {directory} is damaged: {exc}") from exc
    if verified["files"] != listing:
        raise IntegrityError(f"the cached package {directory} does not match its manifest")
    return verified


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
