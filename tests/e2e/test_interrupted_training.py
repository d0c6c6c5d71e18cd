"""A training run killed at any moment registers nothing half-done; trainers can overlap."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from atoll import api
from atoll.settings import Settings
from tests.conftest import write_demo_project

ATOLL = Path(sys.executable).with_name("atoll")
NAME = "credit-risk"
BIG_MODEL = {
    "estimator": "lightgbm.LGBMClassifier",
    "params": {"n_estimators": 400, "num_leaves": 15, "n_jobs": 1},
}


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ATOLL_")}


def start_train(project: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(ATOLL), "-C", str(project), "train", *extra],
        env=clean_env(),
        stdout=subprocess.PIPE if extra else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def stderr_lines(proc: subprocess.Popen[str]) -> tuple[queue.Queue[str], threading.Thread]:
    """Feed the process's stderr lines into a queue; '' marks its end."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put("")

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return lines, thread


def kill_after(project: Path, stage: str | None, delay: float) -> list[str]:
    """Start a trainer; SIGKILL it ``delay`` seconds after its ``stage`` line (or start)."""
    proc = start_train(project)
    seen: list[str] = []
    lines, pump = stderr_lines(proc)
    try:
        while stage is not None:
            line = lines.get(timeout=120)
            assert line, f"trainer ended before ✓ {stage}: {seen}"
            seen.append(line.rstrip())
            if line.startswith(f"✓ {stage} "):
                break
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        returncode = proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait()
        pump.join(timeout=30)  # the pipe ends with the process
        assert proc.stderr is not None
        proc.stderr.close()
    # SIGKILL unless it had already finished cleanly in the meantime
    assert returncode in (-signal.SIGKILL, 0), (returncode, seen)
    return seen


def versions(settings: Settings) -> list[int]:
    if not api.list_models(settings=settings):
        return []
    return [v.version for v in api.list_versions(NAME, settings=settings)]


def assert_every_version_is_whole(settings: Settings, new: pd.DataFrame) -> None:
    found = versions(settings)
    assert found == list(range(1, len(found) + 1))
    audited = (
        sorted(
            e.detail["version"]
            for e in api.history(NAME, settings=settings)
            if e.action == "register"
        )
        if found
        else []
    )
    assert audited == found
    for version in found:
        predictor = api.load(f"{NAME}@{version}", settings=settings)
        prediction = predictor.predict(new)
        assert len(prediction.predictions) == len(new)


# (stage line to wait for, seconds to wait after it, whether a version may appear)
KILL_POINTS = [
    (None, 0.5, False),  # still starting up or reading
    ("fit", 0.0, False),  # evaluating: registration is two stages away
    ("evaluate", 0.0, True),  # packaging
    ("package", 0.0, True),  # registering
    ("package", 0.4, True),  # well into registering
]


def kill_and_check(project: Path, stage: str | None, delay: float, may_register: bool) -> None:
    settings = Settings.from_env(project_dir=project, environ={})
    seen = kill_after(project, stage, delay)
    found = versions(settings)
    allowed = ([], [1]) if may_register else ([],)
    assert found in allowed, (stage, delay, seen, found)
    assert_every_version_is_whole(settings, new_rows(project))


def train_again(project: Path) -> None:
    """A normal run after the killed one succeeds and takes the next version number."""
    settings = Settings.from_env(project_dir=project, environ={})
    existing = versions(settings)
    proc = start_train(project, "--json")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    outcome = json.loads(out)
    assert outcome["version"] == len(existing) + 1
    assert outcome["status"] == "ready"
    assert versions(settings) == [*existing, len(existing) + 1]
    assert_every_version_is_whole(settings, new_rows(project))


def new_rows(project: Path) -> pd.DataFrame:
    return pd.read_csv(project / "data" / "new_applications.csv")


@pytest.mark.slow
def test_a_killed_training_run_leaves_no_half_registered_version(tmp_path: Path) -> None:
    template = tmp_path / "template"
    write_demo_project(template, rows=20_000, model=BIG_MODEL)
    projects = [tmp_path / f"killed-{i}" for i in range(len(KILL_POINTS))]
    for project in projects:
        shutil.copytree(template, project)

    # One fresh project per kill point, all at once: the kills wait on stage lines,
    # not on the clock, so running them side by side only saves time.
    with ThreadPoolExecutor(len(KILL_POINTS)) as pool:
        runs = [
            pool.submit(kill_and_check, project, *point)
            for project, point in zip(projects, KILL_POINTS, strict=True)
        ]
        for run in runs:
            run.result()
        # then a normal run where the kill came mid-registration
        again = [pool.submit(train_again, project) for project in projects[-2:]]
        for run in again:
            run.result()


@pytest.mark.slow
def test_two_trainers_at_once_get_versions_1_and_2(tmp_path: Path) -> None:
    write_demo_project(tmp_path, rows=1500, gates=[{"metric": "roc_auc", "min": 0.5}])
    settings = Settings.from_env(project_dir=tmp_path, environ={})
    procs = [start_train(tmp_path, "--json") for _ in range(2)]
    try:
        results = [proc.communicate(timeout=300) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    got = sorted(json.loads(out)["version"] for out, _err in results)
    assert got == [1, 2]
    assert versions(settings) == [1, 2]
    assert_every_version_is_whole(settings, pd.read_csv(tmp_path / "data" / "new_applications.csv"))
