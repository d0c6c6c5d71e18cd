"""The model as workers receive it: package bytes, loaded once per process and verified.

A worker may be another process on this machine or on a Dask cluster that
cannot see the artifact store, so it gets the package's files themselves
(a few megabytes, sent once per worker), writes them to a private temp folder
and opens them with :meth:`Predictor.open`, which checks every sha256 against
the manifest, whose own digest is checked against the registry's first.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atoll._hashing import sha256_bytes
from atoll.errors import IntegrityError

if TYPE_CHECKING:
    from atoll.model.predictor import Predictor
    from atoll.schema import Schema

MANIFEST = "MANIFEST.json"

_LOADED: dict[str, Predictor] = {}
"""Predictors this process has loaded, by manifest digest: one load per worker process."""

KEEP_LOADED = 4
"""A long-lived process scoring with many versions keeps only the latest few loaded."""


@dataclass(frozen=True)
class ModelHandle:
    """One registered version's package files, enough to load its Predictor anywhere.

    Attributes:
        name: the model's name.
        version: the registered version number.
        digest: sha256 of ``MANIFEST.json``, as the registry recorded it.
        files: relative path to bytes, the manifest included.
        allow_imports: module prefixes trusted for user steps and model types.
    """

    name: str
    version: int
    digest: str
    files: dict[str, bytes] = field(repr=False)
    allow_imports: tuple[str, ...] = ()

    @classmethod
    def from_package(
        cls,
        directory: Path,
        *,
        name: str,
        version: int,
        digest: str,
        allow_imports: tuple[str, ...] = (),
    ) -> ModelHandle:
        """Read a verified package directory (e.g. ``Registry.fetch_package``) into memory."""
        listed = json.loads((directory / MANIFEST).read_bytes())["files"]
        files = {relative: (directory / relative).read_bytes() for relative in [MANIFEST, *listed]}
        return cls(name, version, digest, files, tuple(allow_imports))

    @property
    def manifest_bytes(self) -> bytes:
        return self.files[MANIFEST]

    def schema(self) -> Schema:
        """The model's input schema, from its manifest (nothing is loaded)."""
        from atoll.model.predictor import schema_from_manifest

        manifest: dict[str, Any] = json.loads(self.manifest_bytes)
        return schema_from_manifest(manifest)


def predictor_for(handle: ModelHandle) -> Predictor:
    """The handle's Predictor, loaded and verified on first use in this process."""
    predictor = _LOADED.get(handle.digest)
    if predictor is None:
        predictor = _load(handle)
        while len(_LOADED) >= KEEP_LOADED:
            del _LOADED[next(iter(_LOADED))]
        _LOADED[handle.digest] = predictor
    return predictor


def _load(handle: ModelHandle) -> Predictor:
    from atoll.model.package import safe_name
    from atoll.model.predictor import Predictor

    if sha256_bytes(handle.manifest_bytes) != handle.digest:
        raise IntegrityError(
            f"the package of {handle.name}@{handle.version} arrived altered: "
            "its manifest does not match the registry's digest",
            digest=handle.digest,
        )
    directory = Path(tempfile.mkdtemp(prefix="atoll-batch-model-"))
    try:
        for relative, data in handle.files.items():
            path = directory / (MANIFEST if relative == MANIFEST else safe_name(relative))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return Predictor.open(directory, handle.allow_imports)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
