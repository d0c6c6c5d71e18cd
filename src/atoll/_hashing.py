"""sha256 of bytes, files and canonical JSON: the one way atoll fingerprints things."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so large files use little memory."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def canonical_json(value: Any, *, allow_nan: bool = False) -> bytes:
    """JSON with sorted keys and no whitespace, so equal values hash equally.

    NaN and infinities are refused (JSON has none) unless ``allow_nan``, which
    writes them as ``NaN``/``Infinity``, the same way every time.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=allow_nan).encode()


def sha256_json(value: Any) -> str:
    """Hex sha256 of the canonical JSON form of ``value``."""
    return sha256_bytes(canonical_json(value))
