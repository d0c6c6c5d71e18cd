"""What of a logged row's inputs may reach the prediction log: PII columns never do in clear.

Columns marked ``pii: true`` in the schema are replaced by a keyed hash
(HMAC-SHA256 with ``ATOLL_PII_PEPPER``, cut to 32 hex characters) so equal
values can still be counted, or dropped when no pepper is set or the spec
says ``monitor.log.pii: drop``. The server and batch scoring both log
through this one rule, so a value hashes the same whichever logged it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, Literal

from atoll.schema import Schema

PII_PEPPER_VARIABLE = "ATOLL_PII_PEPPER"


class Redactor:
    """Redacts the PII columns of logged inputs, as ``monitor.log.pii`` and the pepper say."""

    def __init__(self, pii: Literal["hash", "drop"], pepper: str | None) -> None:
        # Keyed once: each value's hash starts from a copy (a third cheaper than hmac.new).
        self._keyed = (
            hmac.new(pepper.encode(), digestmod=hashlib.sha256)
            if pepper and pii == "hash"
            else None
        )

    def columns(self, schema: Schema, columns: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
        """``columns`` with each PII column hashed (nulls stay null) or left out."""
        out = dict(columns)
        for name in schema.pii.intersection(columns):
            if self._keyed is None:
                del out[name]
            else:
                out[name] = [None if v is None else self.hash(v) for v in columns[name]]
        return out

    def hash(self, value: Any) -> str:
        """The keyed hash of a value's text (only when a pepper is set and ``pii`` is hash)."""
        if self._keyed is None:
            raise ValueError("PII values are dropped, not hashed: no pepper is set")
        digest = self._keyed.copy()
        digest.update(str(value).encode())
        return digest.hexdigest()[:32]
