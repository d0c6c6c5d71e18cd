from __future__ import annotations

from pathlib import Path

import pytest

from atoll.errors import SpecError
from atoll.settings import Settings
from atoll.spec import parse_spec

SPEC = """\
name: m
task: binary
target: y
data: {path: d.csv}
columns: {y: {type: int}}
model: {estimator: sklearn.linear_model.LogisticRegression}
"""


def test_defaults_live_in_the_project(tmp_path: Path) -> None:
    settings = Settings.from_env(project_dir=tmp_path, environ={"ATOLL_ACTOR": "ana"})
    assert settings.db_url == f"sqlite:///{tmp_path.resolve() / '.atoll' / 'atoll.db'}"
    assert settings.artifact_root == tmp_path.resolve() / ".atoll" / "artifacts"
    assert settings.actor == "ana"


def test_precedence_argument_then_environment_then_spec(tmp_path: Path) -> None:
    env = {"ATOLL_DB_URL": "postgresql://env/db"}
    spec_url = "postgresql://spec/db"
    assert Settings.from_env(tmp_path, {}, spec_db_url=spec_url).db_url == spec_url
    assert Settings.from_env(tmp_path, env, spec_db_url=spec_url).db_url == env["ATOLL_DB_URL"]
    explicit = Settings.from_env(tmp_path, env, db_url="sqlite:///x.db", spec_db_url=spec_url)
    assert explicit.db_url == "sqlite:///x.db"


def test_artifact_root_from_the_environment(tmp_path: Path) -> None:
    env = {"ATOLL_ARTIFACT_ROOT": str(tmp_path / "blobs")}
    assert Settings.from_env(tmp_path, env).artifact_root == tmp_path / "blobs"


def test_the_spec_may_name_a_store_without_credentials() -> None:
    spec = parse_spec(SPEC + "store: {url: 'postgresql://atoll@db.internal/registry'}\n")
    assert spec.store is not None
    assert spec.store.url == "postgresql://atoll@db.internal/registry"


def test_a_password_in_the_spec_is_refused() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(SPEC + "store: {url: 'postgresql://atoll:hunter2@db/registry'}\n")
    [(field, line, message)] = info.value.problems
    assert field == "store"
    assert line == 7
    assert "ATOLL_DB_URL" in message
    assert "hunter2" not in str(info.value)
