"""Moving model packages in and out of the artifact store, verified both ways.

The registry reads only one key of ``MANIFEST.json``: ``files``, a mapping of
relative POSIX path to sha256. Paths are checked against one canonical form
before any join, so a manifest cannot point outside its package or the cache.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from atoll._hashing import sha256_file
from atoll.errors import IntegrityError, PackageError
from atoll.store.artifacts import ArtifactStore, check_digest

MANIFEST = "MANIFEST.json"


def safe_relpath(name: object) -> str:
    """Return ``name`` if it is a canonical relative POSIX path inside a package.

    Raises:
        PackageError: absolute, ``..``, backslashes, control characters, empty,
            non-canonical (``./a``, ``a//b``, ``a/``), or the manifest itself.
    """
    if not isinstance(name, str):
        raise PackageError(f"unsafe file name in package: {name!r}")
    pure = PurePosixPath(name)
    unsafe = (
        not name
        or pure.is_absolute()
        or ".." in pure.parts
        or "\\" in name
        or any(ord(char) < 32 for char in name)
        or pure.as_posix() != name
        or name == MANIFEST
    )
    if unsafe:
        raise PackageError(f"unsafe file name in package: {name!r}", file=name)
    return name


def parse_listing(manifest_bytes: bytes, where: str) -> dict[str, str]:
    """The ``files`` mapping of a manifest, every path and digest checked.

    Raises:
        PackageError: not a JSON object with a ``files`` mapping, or a bad entry.
    """
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError as exc:
        raise PackageError(f"{where}: {MANIFEST} is not valid JSON") from exc
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise PackageError(f"{where}: {MANIFEST} has no 'files' mapping of path to sha256")
    for name, digest in files.items():
        safe_relpath(name)
        try:
            check_digest(digest)
        except IntegrityError:
            raise PackageError(f"{where}: {name} has no valid sha256", file=name) from None
    return dict(files)


def read_source(package_dir: Path) -> tuple[bytes, dict[str, str]]:
    """Read a package directory's manifest and verify every listed file against it.

    Raises:
        PackageError: no readable manifest, or a listed file missing, unsafe, or
            a link leading outside the package.
        IntegrityError: a listed file's sha256 does not match the manifest.
    """
    try:
        manifest_bytes = (package_dir / MANIFEST).read_bytes()
    except OSError as exc:
        raise PackageError(f"{package_dir} is not a model package: no readable {MANIFEST}") from exc
    listing = parse_listing(manifest_bytes, str(package_dir))
    root = package_dir.resolve()
    for name, digest in listing.items():
        path = package_dir / name
        if not path.resolve().is_relative_to(root):
            raise PackageError(f"{name} in package {package_dir} leads outside it", file=name)
        if not path.is_file():
            raise PackageError(f"package {package_dir} is missing {name}", file=name)
        if sha256_file(path) != digest:
            raise IntegrityError(
                f"{name} in package {package_dir} was altered: "
                "its sha256 does not match the manifest",
                file=name,
            )
    return manifest_bytes, listing


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


def materialise(artifacts: ArtifactStore, manifest_digest: str, cache_root: Path) -> Path:
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
    verify_copy(final, manifest_digest, listing)
    return final


def verify_copy(directory: Path, manifest_digest: str, listing: dict[str, str]) -> None:
    """Check a materialised package: the manifest, every listed file, nothing else.

    Raises:
        IntegrityError: a file is missing, altered, a link, or not listed.
    """
    expected = {**listing, MANIFEST: manifest_digest}
    for name, digest in expected.items():
        path = directory / name
        if path.is_symlink() or not path.is_file() or sha256_file(path) != digest:
            raise IntegrityError(
                f"{name} in the cached package {directory} was altered or removed: "
                "its sha256 does not match the manifest",
                file=name,
                digest=digest,
            )
    for parent, _dirs, files in os.walk(directory):
        for file in files:
            name = (Path(parent) / file).relative_to(directory).as_posix()
            if name not in expected:
                raise IntegrityError(
                    f"the cached package {directory} holds an unlisted file {name}", file=name
                )


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
