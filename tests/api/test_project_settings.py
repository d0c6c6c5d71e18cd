"""What a project's spec contributes to every command: trusted imports, store, SQL sources."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from atoll import api
from atoll.data.synthetic import credit_risk
from atoll.errors import SpecError
from atoll.settings import Settings
from tests.conftest import write_demo_project

EASY_GATES = [{"metric": "roc_auc", "min": 0.5}]

USER_STEP = textwrap.dedent(
    """
    from typing import Any, ClassVar

    import pandas as pd

    from atoll.data.steps import Step


    class Double(Step):
        name: ClassVar[str] = "double"
        kinds: ClassVar[tuple[str, ...]] = ("numeric",)

        def apply_column(self, column: str, series: pd.Series) -> dict[str, Any]:
            return {column: series.to_numpy(dtype=float) * 2.0}
    """
)


def _edit(spec_path: Path, **changes: object) -> None:
    spec = yaml.safe_load(spec_path.read_text())
    spec.update(changes)
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))


def test_a_model_with_a_user_step_loads_with_the_projects_trust(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module_dir = tmp_path / "code"
    module_dir.mkdir()
    (module_dir / "atoll_test_usersteps.py").write_text(USER_STEP)
    monkeypatch.syspath_prepend(str(module_dir))
    root = tmp_path / "project"
    spec_path = write_demo_project(root, rows=1500, gates=EASY_GATES)
    spec = yaml.safe_load(spec_path.read_text())
    _edit(
        spec_path,
        allow_imports=["atoll_test_usersteps"],
        features=[*spec["features"], {"step": "atoll_test_usersteps.Double", "columns": ["age"]}],
    )
    settings = api.project_settings(root)
    assert settings.allow_imports == ("atoll_test_usersteps",)
    outcome = api.train(spec_path, settings=settings)

    ref = f"credit-risk@{outcome.version.version}"
    rows = credit_risk(20, seed=3).drop(columns=["defaulted"])
    assert len(api.load(ref, settings=settings).predict(rows).predictions) == 20
    untrusted = Settings.from_env(project_dir=root, environ={})
    with pytest.raises(SpecError, match=r"atoll_test_usersteps\.Double"):
        api.load(ref, settings=untrusted)


def test_registry_commands_survive_a_typo_in_a_training_section(tmp_path: Path) -> None:
    spec_path = write_demo_project(tmp_path, rows=500)
    spec_path.write_text(spec_path.read_text() + "tpyo: 1\n")
    assert api.list_models(settings=api.project_settings(tmp_path)) == []


def test_a_bad_store_section_is_still_an_error(tmp_path: Path) -> None:
    spec_path = write_demo_project(tmp_path, rows=500)
    _edit(spec_path, store={"url": "postgresql://u:secret@h/db"})
    with pytest.raises(SpecError, match="store"):
        api.project_settings(tmp_path)


def test_a_sql_source_named_by_an_environment_variable(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    engine = sa.create_engine(source)
    try:
        with engine.begin() as connection:
            credit_risk(1500, seed=7).to_sql("applications", connection, index=False)
    finally:
        engine.dispose()
    spec_path = write_demo_project(tmp_path / "p", rows=500, gates=EASY_GATES)
    spec = yaml.safe_load(spec_path.read_text())
    data = {**spec["data"], "sql": {"url_env": "CREDIT_DB", "query": "SELECT * FROM applications"}}
    del data["path"]
    _edit(spec_path, data=data)

    env = {"CREDIT_DB": source}
    settings = Settings.from_env(project_dir=tmp_path / "p", environ=env)
    outcome = api.train(spec_path, settings=settings)
    assert outcome.result.manifest["lineage"]["rows"]["read"] == 1500
    missing = Settings.from_env(project_dir=tmp_path / "p", environ={})
    with pytest.raises(SpecError, match=r"CREDIT_DB.*not set"):
        api.train(spec_path, settings=missing)


def test_a_password_in_a_sql_source_url_is_refused(tmp_path: Path) -> None:
    spec_path = write_demo_project(tmp_path, rows=500)
    spec = yaml.safe_load(spec_path.read_text())
    data = {"sql": {"url": "postgresql://u:hunter2@h/db", "query": "SELECT 1"}}
    _edit(spec_path, data={**data, "time_column": spec["data"]["time_column"]})
    with pytest.raises(SpecError) as info:
        api.train(spec_path, settings=Settings.from_env(project_dir=tmp_path, environ={}))
    assert "hunter2" not in str(info.value)
    assert "data.sql" in str(info.value)


def test_scratch_left_by_a_killed_run_is_cleaned_after_a_day(tmp_path: Path) -> None:
    import os
    import time

    spec_path = write_demo_project(tmp_path, rows=500, gates=EASY_GATES)
    scratch = tmp_path / ".atoll" / "tmp"
    old, recent = scratch / "old-run", scratch / "recent-run"
    for folder in (old, recent):
        folder.mkdir(parents=True)
    day_ago = time.time() - api.STALE_SCRATCH_S - 60
    os.utime(old, (day_ago, day_ago))
    api.train(spec_path, settings=Settings.from_env(project_dir=tmp_path, environ={}))
    assert not old.exists()
    assert recent.exists()
