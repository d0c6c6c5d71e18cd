"""The model package: an immutable directory whose MANIFEST.json lists every file's sha256.

Writing puts the files first and the manifest last, so a package without a
manifest is simply incomplete. Opening verifies every hash before any file is
parsed, and refuses unlisted files, so nothing unverified is ever loaded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from atoll._hashing import canonical_json, sha256_file
from atoll.errors import IntegrityError, PackageError

MANIFEST = "MANIFEST.json"
FORMAT_VERSION = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")


def write_package(
    directory: Path, manifest: Mapping[str, Any], files: Mapping[str, bytes]
) -> dict[str, Any]:
    """Write ``files`` and a manifest listing their hashes into a new ``directory``.

    Files already in the directory (e.g. a model file written by its library)
    are included too; ``files`` adds in-memory ones.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        target = directory / safe_name(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    listed = {
        path.relative_to(directory).as_posix(): sha256_file(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }
    full = {"format_version": FORMAT_VERSION, **manifest, "files": listed}
    (directory / MANIFEST).write_bytes(json.dumps(full, indent=2, sort_keys=True).encode())
    return full


def verify_package(directory: Path) -> dict[str, Any]:
    """Check the manifest and every file's sha256; return the manifest.

    Raises:
        PackageError: no readable manifest, an unsafe or missing file.
        IntegrityError: a file's content does not match its recorded hash, a
            link leads outside the package, or a file is not listed.
    """
    manifest = read_manifest(directory)
    files = listed_files(manifest, str(directory))
    root = directory.resolve()
    for name, digest in files.items():
        path = directory / name
        if not path.resolve().is_relative_to(root):
            raise IntegrityError(f"{name} in package {directory} leads outside it", file=name)
        if not path.is_file():
            raise PackageError(f"package {directory} is missing {name}", file=name)
        if sha256_file(path) != digest:
            raise IntegrityError(
                f"{name} in package {directory} was altered: "
                "its sha256 does not match the manifest",
                file=name,
            )
    _refuse_unlisted(directory, files)
    return manifest


def listed_files(manifest: Mapping[str, Any], where: str) -> dict[str, str]:
    """The manifest's ``files`` mapping, every name and digest checked before any use.

    Raises:
        PackageError: no ``files`` mapping, an unsafe name or a malformed digest.
    """
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise PackageError(f"{where}: {MANIFEST} has no 'files' mapping of path to sha256")
    for name, digest in files.items():
        safe_name(name)
        if not (isinstance(digest, str) and _SHA256.fullmatch(digest)):
            raise PackageError(f"{where}: {name} has no valid sha256", file=name)
    return dict(files)


def read_manifest(directory: Path) -> dict[str, Any]:
    """Parse MANIFEST.json, checking its format version."""
    try:
        manifest = json.loads((directory / MANIFEST).read_bytes())
    except (OSError, ValueError) as exc:
        raise PackageError(f"{directory} is not a model package: no readable {MANIFEST}") from exc
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if version != FORMAT_VERSION:
        raise PackageError(f"{directory}: unsupported package format version {version!r}")
    return dict(manifest)


def read_json(directory: Path, name: str) -> Any:
    """Read one JSON file of a verified package."""
    return json.loads((directory / safe_name(name)).read_bytes())


def json_bytes(value: Any) -> bytes:
    """Canonical JSON bytes for a package file: stable, so equal content hashes equally."""
    return canonical_json(value)


def safe_name(name: object) -> str:
    """Return ``name`` if it is a canonical relative POSIX path inside a package.

    One check, before any path join: a manifest can never point outside its
    package (or the cache it is copied to).

    Raises:
        PackageError: not a string, empty, absolute, ``..``, backslashes,
            control characters, non-canonical (``./a``, ``a//b``), or the manifest.
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


def _refuse_unlisted(directory: Path, files: Mapping[str, str]) -> None:
    for path in directory.rglob("*"):
        name = path.relative_to(directory).as_posix()
        if path.is_file() and name != MANIFEST and name not in files:
            raise IntegrityError(f"package {directory} holds an unlisted file {name}", file=name)
