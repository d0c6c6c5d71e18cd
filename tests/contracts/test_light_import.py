"""`import atoll` and `atoll --help` must not drag in the heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = {
    "numpy",
    "pandas",
    "pyarrow",
    "sklearn",
    "scipy",
    "lightgbm",
    "xgboost",
    "skops",
    "fairlearn",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "pydantic",
    "yaml",
    "rich",
}


def _imported_after(code: str) -> set[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    return {m.split(".")[0] for m in modules}


def test_import_atoll_is_light() -> None:
    assert _imported_after("import atoll") & HEAVY == set()


def test_cli_help_is_light() -> None:
    code = (
        "from atoll.cli.main import cli\n"
        "try:\n    cli.main(['--help'], standalone_mode=False)\n"
        "except SystemExit:\n    pass\n"
    )
    assert _imported_after(code) & HEAVY == set()


def test_the_probe_sees_heavy_imports() -> None:
    """The probe itself must be able to fail: importing the trainer pulls in numpy."""
    assert "numpy" in _imported_after("import atoll.model.train")
