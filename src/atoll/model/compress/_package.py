"""Candidate packages: the original package's files with the model file replaced.

Everything else (wrangler, profile, spec) is copied byte for byte, so a
candidate scores through the same Predictor code as its parent. The hold-out
rows are not copied: the candidate refers to the parent's by sha256 (manifest
``references``), and the artifact store keeps them once for both. The
manifest says what changed: the model's format and file, a ``compression``
block, and the parent in its lineage.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

from atoll.model import formats
from atoll.model.compress.candidates import Built, Source
from atoll.model.holdout import holdout_file
from atoll.model.package import REFERENCES, listed_files, referenced_blobs, write_package

_NOT_CARRIED = ("files", "format_version", "signature")
"""Manifest keys every write recomputes: never copied from the parent."""


def write_candidate(source: Source, built: Built, directory: Path, parent: dict[str, Any]) -> None:
    """Build ``directory`` as the candidate package of ``built``."""
    old_file = source.manifest["model"]["file"]
    new_file = formats.FORMATS[built.format][1]
    where = str(source.directory)
    held_out = holdout_file(source.manifest)
    references = referenced_blobs(source.manifest, where)
    for name, digest in listed_files(source.manifest, where).items():
        if name == held_out:
            references[name] = digest
        elif name != old_file:
            target = directory / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source.directory / name, target)
    manifest = {k: v for k, v in source.manifest.items() if k not in _NOT_CARRIED}
    if references:
        manifest[REFERENCES] = references
    manifest["created_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    manifest["model"] = {
        **manifest["model"],
        "format": built.format,
        "file": new_file,
        "source_format": source.model_format,
    }
    manifest["lineage"] = {**manifest.get("lineage", {}), "parent": parent}
    manifest["compression"] = {"representation": built.name, **built.details}
    write_package(directory, manifest, {new_file: built.data})


def finish(directory: Path, manifest: dict[str, Any], updates: dict[str, Any]) -> None:
    """Rewrite the selected candidate's manifest with what was measured (files unchanged).

    ``updates`` replace manifest entries, except ``compression``, whose keys
    are added to the block the candidate was written with. Neither mapping is
    changed.
    """
    entries = {k: v for k, v in manifest.items() if k not in _NOT_CARRIED}
    rest = {k: v for k, v in updates.items() if k != "compression"}
    entries["compression"] = {**entries.get("compression", {}), **updates.get("compression", {})}
    write_package(directory, {**entries, **rest}, {})
