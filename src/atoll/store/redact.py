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
        self._pepper = pepper.encode() if pepper and pii == "hash" else None

    def columns(self, schema: Schema, columns: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
        """``columns`` with each PII column hashed (nulls stay null) or left out."""
        out: dict[str, list[Any]] = {}
        for name, values in columns.items():
            column = schema.columns.get(name)
            if column is None or not column.pii:
                out[name] = values
            elif self._pepper is not None:
                out[name] = [None if v is None else self.hash(v) for v in values]
        return out

    def hash(self, value: Any) -> str:
        """The keyed hash of a value's text (only when a pepper is set and ``pii`` is hash)."""
        if self._pepper is None:
            raise ValueError("PII values are dropped, not hashed: no pepper is set")
        return hmac.new(self._pepper, str(value).encode(), hashlib.sha256).hexdigest()[:32]
