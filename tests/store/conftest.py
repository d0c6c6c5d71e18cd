"""Fixtures of the store tests: an open registry on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from atoll.store.db import create_engine_for, migrate
from atoll.store.registry import Registry


@pytest.fixture
def registry(store_url: str, tmp_path: Path) -> Iterator[Registry]:
    """A migrated registry on SQLite and on PostgreSQL, artifacts under the temp dir."""
    with Registry.open(store_url, tmp_path / "artifacts", actor="tester") as opened:
        yield opened


@pytest.fixture
def engine(store_url: str) -> Iterator[sa.Engine]:
    """A migrated store database on SQLite and on PostgreSQL (no registry around it)."""
    engine = create_engine_for(store_url)
    migrate(engine)
    try:
        yield engine
    finally:
        engine.dispose()
