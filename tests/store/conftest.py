"""Fixtures of the store tests: an open registry on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from atoll.store.registry import Registry


@pytest.fixture
def registry(store_url: str, tmp_path: Path) -> Iterator[Registry]:
    """A migrated registry on SQLite and on PostgreSQL, artifacts under the temp dir."""
    with Registry.open(store_url, tmp_path / "artifacts", actor="tester") as opened:
        yield opened
