"""HMAC signatures over a package manifest: who holds the key vouches for the package.

The manifest already lists the sha256 of every file, so signing the manifest
signs the whole package. The signature covers the canonical JSON of the
manifest without its own ``signature`` key, so a reformatted MANIFEST.json
still verifies, and any change to a hash, a metric or the lineage does not.
The key never appears in a message, a log line or an error.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from atoll._hashing import canonical_json
from atoll.errors import IntegrityError

SIGNATURE = "signature"
"""The manifest key that holds ``hmac-sha256:<hex>``."""

SCHEME = "hmac-sha256"


def signature_of(manifest: Mapping[str, Any], key: bytes) -> str:
    """``hmac-sha256:<hex>`` over the manifest's canonical JSON, its signature left out."""
    unsigned = {k: v for k, v in manifest.items() if k != SIGNATURE}
    # allow_nan: a metric may be NaN (e.g. AUC with one class); json writes it the same way twice.
    body = canonical_json(unsigned, allow_nan=True)
    return f"{SCHEME}:{hmac.new(key, body, hashlib.sha256).hexdigest()}"


def check_signature(manifest: Mapping[str, Any], key: bytes, where: str) -> None:
    """Refuse a manifest that is unsigned or whose signature does not match ``key``.

    Raises:
        IntegrityError: no signature, an unknown scheme, or a mismatch (``where``
            names the package).
    """
    found = manifest.get(SIGNATURE)
    if not isinstance(found, str) or not found:
        raise IntegrityError(
            f"{where} is not signed, and a signing key is set (ATOLL_SIGNING_KEY): "
            "only signed packages load",
            file="MANIFEST.json",
        )
    if not hmac.compare_digest(found.encode(), signature_of(manifest, key).encode()):
        raise IntegrityError(
            f"{where} has a signature that does not match the signing key "
            "(ATOLL_SIGNING_KEY): it was altered or signed with another key",
            file="MANIFEST.json",
        )
