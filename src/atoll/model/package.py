"""The model package: an immutable directory whose MANIFEST.json lists every file's sha256.

Writing puts the files first and the manifest last, so a package without a
manifest is simply incomplete. Opening verifies every hash before any file is
parsed, and refuses unlisted files, so nothing unverified is ever loaded. With a
signing key, the manifest also carries an HMAC signature (:mod:`atoll.model.signing`)
and opening refuses a package that is unsigned or signed with another key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from atoll._hashing import canonical_json, sha256_file
from atoll.errors import IntegrityError, PackageError
from atoll.model.signing import SIGNATURE, check_signature, signature_of

MANIFEST = "MANIFEST.json"
FORMAT_VERSION = 1
REFERENCES = "references"
"""Manifest key of the files a package uses but does not hold (name -> sha256).

The artifact store keeps them once for every package that refers to them,
e.g. the hold-out rows a compressed child shares with its parent.
"""
_SHA256 = re.compile(r"[0-9a-f]{64}")


def write_package(
    directory: Path,
    manifest: Mapping[str, Any],
    files: Mapping[str, bytes],
    *,
    signing_key: bytes | None = None,
) -> dict[str, Any]:
    """Write ``files`` and a manifest listing their hashes into a new ``directory``.

    Files already in the directory (e.g. a model file written by its library)
    are included too; ``files`` adds in-memory ones. A ``signature`` in
    ``manifest`` (say, copied from a parent package) is dropped, since it would
    no longer match; with ``signing_key`` the new manifest is signed.
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
    unsigned = {k: v for k, v in manifest.items() if k != SIGNATURE}
    full = {"format_version": FORMAT_VERSION, **unsigned, "files": listed}
    if signing_key is not None:
        full[SIGNATURE] = signature_of(full, signing_key)
    _write_manifest(directory, full)
    return full


def sign_package(directory: Path, signing_key: bytes) -> dict[str, Any]:
    """Sign the manifest of a package written without a key; return the signed manifest.

    Only the manifest changes: it already holds every file's hash, so its
    signature covers the whole package (registering verifies the files).
    """
    manifest = read_manifest(directory)
    signed = {**manifest, SIGNATURE: signature_of(manifest, signing_key)}
    _write_manifest(directory, signed)
    return signed


def _write_manifest(directory: Path, manifest: Mapping[str, Any]) -> None:
    (directory / MANIFEST).write_bytes(json.dumps(manifest, indent=2, sort_keys=True).encode())


def verify_package(
    directory: Path, *, signing_key: bytes | None = None, manifest_bytes: bytes | None = None
) -> dict[str, Any]:
    """Check the manifest and every file's sha256; return the manifest.

    With ``signing_key``, the manifest's signature is checked first; without
    one, a signature present is not checked. ``manifest_bytes`` (the caller's
    one read of ``MANIFEST.json``) is what gets checked instead of a fresh
    read, so what the caller keeps is exactly what was verified.

    Raises:
        PackageError: no readable manifest, an unsafe or missing file.
        IntegrityError: a file's content does not match its recorded hash, a
            link leads outside the package, a file is not listed, or (with a
            key) the package is unsigned or mis-signed.
    """
    if manifest_bytes is None:
        manifest_bytes = read_manifest_bytes(directory)
    manifest = parse_manifest(manifest_bytes, directory)
    if signing_key is not None:
        check_signature(manifest, signing_key, f"package {directory}")
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
    return _checked_digests(files, where)


def referenced_blobs(manifest: Mapping[str, Any], where: str) -> dict[str, str]:
    """The manifest's ``references`` (name -> sha256 of a blob the store holds), checked.

    Raises:
        PackageError: ``references`` is not such a mapping, or a name or digest is invalid.
    """
    references = manifest.get(REFERENCES, {})
    if not isinstance(references, dict):
        raise PackageError(f"{where}: {MANIFEST} '{REFERENCES}' is not a mapping of name to sha256")
    return _checked_digests(references, where)


def _checked_digests(mapping: Mapping[str, Any], where: str) -> dict[str, str]:
    for name, digest in mapping.items():
        safe_name(name)
        if not (isinstance(digest, str) and _SHA256.fullmatch(digest)):
            raise PackageError(f"{where}: {name} has no valid sha256", file=name)
    return dict(mapping)


def read_manifest(directory: Path) -> dict[str, Any]:
    """Parse MANIFEST.json, checking its format version."""
    return parse_manifest(read_manifest_bytes(directory), directory)


def read_manifest_bytes(directory: Path) -> bytes:
    """The bytes of a package's MANIFEST.json, read once.

    Raises:
        PackageError: there is no readable manifest.
    """
    try:
        return (directory / MANIFEST).read_bytes()
    except OSError as exc:
        raise PackageError(f"{directory} is not a model package: no readable {MANIFEST}") from exc


def parse_manifest(data: bytes, directory: Path) -> dict[str, Any]:
    """Parse the bytes of ``directory``'s MANIFEST.json, checking its format version.

    Raises:
        PackageError: not JSON, or an unsupported format version.
    """
    try:
        manifest = json.loads(data)
    except ValueError as exc:
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
