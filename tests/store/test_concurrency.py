"""Two processes registering the same model at once, on a fresh database."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from atoll.store.registry import Registry

PER_PROCESS = 8

REGISTER = """
import os, sys, time
from pathlib import Path
from atoll.store.registry import Registry

url, root, package, go, count = sys.argv[1:6]
print("ready", flush=True)
deadline = time.monotonic() + 60
while not Path(go).exists():
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.002)
with Registry.open(url, Path(root), actor=f"proc-{os.getpid()}") as registry:
    for _ in range(int(count)):
        print(registry.register(Path(package), "racer").version, flush=True)
"""


def _race(url: str, tmp_path: Path, package: Path) -> list[list[int]]:
    go = tmp_path / "go"
    args = [url, str(tmp_path / "artifacts"), str(package), str(go), str(PER_PROCESS)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", REGISTER, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        go.touch()
        results = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    return [[int(line) for line in out.split()] for out, _err in results]


def test_two_processes_registering_at_once_get_distinct_consecutive_versions(
    store_url: str, tmp_path: Path, make_package: Callable[..., Path]
) -> None:
    per_process = _race(store_url, tmp_path, make_package())
    for versions in per_process:
        assert len(versions) == PER_PROCESS
        assert versions == sorted(versions)
    allocated = sorted(v for versions in per_process for v in versions)
    assert allocated == list(range(1, 2 * PER_PROCESS + 1))
    with Registry.open(store_url, tmp_path / "artifacts") as registry:
        stored = registry.list_versions("racer")
        assert [v.version for v in stored] == allocated
        assert len({v.created_by for v in stored}) == 2
        assert registry.list_models()[0].latest_version == 2 * PER_PROCESS
        assert len(registry.audit_log("racer")) == 2 * PER_PROCESS
