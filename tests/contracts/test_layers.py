"""The import-linter contracts hold, and they do catch an upward import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path, src: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_contracts_hold() -> None:
    done = _lint(ROOT, ROOT / "src")
    assert done.returncode == 0, done.stdout + done.stderr


def _copy_project(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_an_upward_import_breaks_the_layers_contract(tmp_path: Path) -> None:
    project = _copy_project(tmp_path)
    split = project / "src" / "atoll" / "data" / "split.py"
    split.write_text(split.read_text() + "\nimport atoll.store.registry  # upward\n")
    done = _lint(project, project / "src")
    assert done.returncode != 0
    assert "atoll.data.split -> atoll.store.registry" in done.stdout


def test_core_importing_sql_breaks_a_contract(tmp_path: Path) -> None:
    project = _copy_project(tmp_path)
    spec = project / "src" / "atoll" / "spec.py"
    spec.write_text(spec.read_text() + "\nimport sqlalchemy  # not in the core\n")
    done = _lint(project, project / "src")
    assert done.returncode != 0
    assert "atoll.spec -> sqlalchemy" in done.stdout
