"""A worker that fails as soon as it starts, for the supervisor's tests (spawned by name)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any


def record_and_fail(starts: str, _sock: Any) -> None:
    """Note the time it started in ``starts``, then exit 1 (a worker's ordinary failure)."""
    with Path(starts).open("a", encoding="utf-8") as out:
        out.write(f"{time.monotonic()}\n")
    sys.exit(1)
