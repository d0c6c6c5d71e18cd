"""``atoll gc`` and the sizes ``atoll models show`` reports."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from atoll._sizes import human_bytes
from atoll.cli.main import cli
from atoll.settings import Settings
from atoll.store.registry import Registry
from tests.conftest import MakePackage

# The store comes from these: the tests must not inherit a developer's settings.
CLEAN_ENV: dict[str, str | None] = {
    "ATOLL_DB_URL": None,
    "ATOLL_ARTIFACT_ROOT": None,
    "ATOLL_PROJECT_DIR": None,
    "ATOLL_SIGNING_KEY": None,
    "ATOLL_STORE_MAX_BYTES": None,
    "ATOLL_ACTOR": "cli-test",
    "COLUMNS": "200",
}


def atoll(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=CLEAN_ENV, prog_name="atoll")


@pytest.fixture
def project(tmp_path: Path, make_package: MakePackage) -> Path:
    """A project whose store holds three versions of ``m``, version 1 in production.

    Its blobs are dated two hours back, past gc's grace period, as in a store in use.
    """
    root = tmp_path / "project"
    root.mkdir()
    settings = Settings.from_env(root, {})
    with Registry.from_settings(settings) as registry:
        for index in (1, 2, 3):
            files = {"model.txt": f"tree {index}\n".encode() * 100}
            registry.register(make_package(files, name=f"p{index}"), "m")
        registry.set_alias("m", "production", 1)
    then = time.time() - 7200
    for path in Path(settings.artifact_root).rglob("*"):
        os.utime(path, (then, then))
    return root


def test_models_show_reports_each_version_size(project: Path) -> None:
    listed = atoll("-C", project, "models", "show", "m")
    assert listed.exit_code == 0, listed.output
    assert "size" in listed.stdout
    one = json.loads(atoll("-C", project, "models", "show", "m@2", "--json").stdout)
    assert one["size_bytes"] > 700
    assert human_bytes(one["size_bytes"]) in listed.stdout
    shown = atoll("-C", project, "models", "show", "m@2")
    assert re.search(rf"package size\s*│\s*{human_bytes(one['size_bytes'])}", shown.stdout)


def test_gc_dry_run_then_run_keeps_the_alias_and_the_newest(project: Path) -> None:
    planned = atoll("-C", project, "gc", "--keep-last", "1", "--dry-run", "--grace", "60")
    assert planned.exit_code == 0, planned.output
    assert "would delete versions: m@2" in planned.stdout
    assert "would remove 2 blobs" in planned.stdout
    done = atoll("-C", project, "gc", "--keep-last", "1", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["deleted_versions"] == ["m@2"]
    assert report["blobs_removed"] == 2
    assert report["dry_run"] is False
    versions = json.loads(atoll("-C", project, "models", "show", "m", "--json").stdout)
    assert [v["status"] for v in versions] == ["ready", "deleted", "ready"]
    assert versions[1]["size_bytes"] > 0  # recorded at registration, kept for history
    again = atoll("-C", project, "gc")
    assert again.exit_code == 0, again.output
    assert "deleted versions: none" in again.stdout
    assert "removed 0 blobs (0 B)" in again.stdout


def test_gc_refuses_a_negative_keep_last(project: Path) -> None:
    result = atoll("-C", project, "gc", "--keep-last", "-1")
    assert result.exit_code == 2
    assert "--keep-last" in result.output


def test_gc_refuses_a_grace_period_under_a_minute(project: Path) -> None:
    """A registration stores its blobs before it commits: too short a grace loses them."""
    blobs = sorted(p for p in project.rglob("*") if p.is_file())
    result = atoll("-C", project, "gc", "--grace", "0")
    assert result.exit_code == 2
    assert "--grace" in result.output
    assert "at least 60 s" in " ".join(result.output.split())
    assert sorted(p for p in project.rglob("*") if p.is_file()) == blobs


def test_a_promotion_of_a_deleted_version_is_a_clean_error(project: Path) -> None:
    atoll("-C", project, "gc", "--keep-last", "1")
    result = atoll("-C", project, "models", "promote", "m@2")
    assert result.exit_code == 1
    assert "deleted by `atoll gc`" in result.stderr
