"""``atoll demo`` as a user runs it: a real process, twice in the same directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from atoll import api
from atoll.settings import Settings

ATOLL = Path(sys.executable).with_name("atoll")


def run_demo(directory: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATOLL_")}
    env["ATOLL_ACTOR"] = "e2e"
    return subprocess.run(
        [str(ATOLL), "demo", "--dir", str(directory), "--rows", "4000", "--no-serve"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_demo_end_to_end_then_again_in_the_same_directory(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    first = run_demo(directory, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    assert "registered credit-risk@1 (ready)" in first.stdout
    assert "promoted credit-risk@1 to production" in first.stdout
    assert "✓ register" in first.stderr

    new = pd.read_csv(directory / "data" / "new_applications.csv")
    assert len(pd.read_csv(directory / "data" / "applications.csv")) == 4000
    assert f"scored {len(new):,} new applications" in first.stdout
    predictions = directory / "predictions.csv"
    scored = pd.read_csv(predictions)
    assert len(scored) == len(new)
    assert scored["application_id"].tolist() == new["application_id"].tolist()
    assert {"prediction", "probability_0", "probability_1"} <= set(scored.columns)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]

    settings = Settings.from_env(project_dir=directory, environ={})
    [model] = api.list_models(settings=settings)
    assert (model.name, model.latest_version, model.aliases) == (
        "credit-risk",
        1,
        {"production": 1},
    )
    assert {e.actor for e in api.history("credit-risk", settings=settings)} == {"e2e"}

    predictions.unlink()
    second = run_demo(directory, tmp_path)
    assert second.returncode == 0, second.stderr
    assert "registered credit-risk@2" in second.stdout
    assert "promoted credit-risk@2 to production" in second.stdout
    assert len(pd.read_csv(predictions)) == len(new)
    assert [v.version for v in api.list_versions("credit-risk", settings=settings)] == [1, 2]
    # the data was generated once: the second run trained on the same rows
    assert len(pd.read_csv(directory / "data" / "applications.csv")) == 4000
