"""`import atoll` and `atoll --help` must not drag in the heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys

ALLOWED = set(sys.stdlib_module_names) | {"atoll"}
"""`import atoll` may load the standard library and atoll itself, nothing else."""

CLI_ALLOWED = ALLOWED | {"click"}
"""`atoll --help` adds click, the CLI's own framework."""


def _imported_after(code: str) -> set[str]:
    """Top-level names of the modules ``code`` imports (those loaded at start-up excluded)."""
    probe = (
        "import sys, json\nbefore = set(sys.modules)\n"
        f"{code}\nprint(json.dumps(sorted(set(sys.modules) - before)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    return {m.split(".")[0] for m in modules}


def test_import_atoll_is_light() -> None:
    assert _imported_after("import atoll") - ALLOWED == set()


def test_cli_help_is_light() -> None:
    code = (
        "from atoll.cli.main import cli\n"
        "try:\n    cli.main(['--help'], standalone_mode=False)\n"
        "except SystemExit:\n    pass\n"
    )
    assert _imported_after(code) - CLI_ALLOWED == set()


def test_the_probe_sees_heavy_imports() -> None:
    """The probe itself must be able to fail: importing the trainer pulls in numpy."""
    assert {"numpy", "pandas"} <= _imported_after("import atoll.model.train") - ALLOWED
