"""Fixtures shared by every test package: store URLs and a tiny fake model package."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from atoll._hashing import sha256_bytes
from atoll.settings import Settings

if TYPE_CHECKING:
    from atoll.api import TrainOutcome

POSTGRES_ENV = "ATOLL_TEST_POSTGRES_URL"

MakePackage = Callable[..., Path]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file in a not-yet-existing folder of the test's temp dir."""
    return f"sqlite:///{tmp_path / 'state' / 'atoll.db'}"


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database, dropped afterwards.

    Needs ``ATOLL_TEST_POSTGRES_URL`` (any database on the server); skips without it.
    """
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL tests skipped")
    url = sa.make_url(base)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    name = f"atoll_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield url.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test (skipped without a server)."""
    with postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    """The same test on SQLite and on PostgreSQL (skipped without a server)."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def make_package(tmp_path: Path) -> MakePackage:
    """Build a small fake model package: a few files and a MANIFEST.json of their sha256.

    Call it as ``make_package()`` or ``make_package(files={"path": b"bytes"}, name="pkg")``.
    """

    def build(files: dict[str, bytes] | None = None, name: str = "package") -> Path:
        content = files or {
            "model.txt": b"tree 0: leaf=0.5\n",
            "steps/scaler.json": b'{"mean": [1.0, 2.0]}',
        }
        directory = tmp_path / name
        for relative, data in content.items():
            path = directory / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        listing = {relative: sha256_bytes(data) for relative, data in content.items()}
        manifest = {"format_version": 1, "name": name, "task": "binary", "files": listing}
        (directory / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        return directory

    return build


DEMO_ROWS = 3000


def write_demo_project(root: Path, rows: int = DEMO_ROWS, **spec_changes: object) -> Path:
    """A demo project (generated data + atoll.yaml) with a quick model; returns the spec path.

    ``spec_changes`` replace top-level spec sections, e.g. ``gates=[...]``.
    """
    import yaml

    from atoll import api

    spec_path = api.init_project(root, demo=True, rows=rows, seed=7)
    spec = yaml.safe_load(spec_path.read_text())
    spec["model"]["params"] = {"n_estimators": 25, "num_leaves": 15, "n_jobs": 1}
    spec.update(spec_changes)
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return spec_path


@dataclass(frozen=True)
class TrainedProject:
    spec_path: Path
    settings: Settings
    outcome: TrainOutcome


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory: pytest.TempPathFactory) -> TrainedProject:
    """One trained, registered and promoted demo version, shared by read-only tests."""
    from atoll import api

    root = tmp_path_factory.mktemp("trained")
    spec_path = write_demo_project(root)
    settings = Settings.from_env(project_dir=root, environ={})
    outcome = api.train(spec_path, settings=settings)
    api.promote(f"{outcome.version.name}@{outcome.version.version}", settings=settings)
    return TrainedProject(spec_path, settings, outcome)
