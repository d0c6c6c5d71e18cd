"""The supervisor of `atoll serve --workers N`: a worker that keeps failing is not restarted
three times a second forever (a real supervisor process, real spawned workers)."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
WATCH_S = 30.0
"""Long enough for four starts on a slow machine (a deadline, not a speed check)."""


def test_a_worker_that_keeps_failing_is_restarted_after_growing_waits(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    supervisor = textwrap.dedent(
        f"""
        import sys
        from atoll.serve.server import bind, supervise
        from tests.serve.crashing import record_and_fail
        sys.exit(supervise(record_and_fail, ({str(starts)!r},), bind("127.0.0.1", 0), 1))
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", supervisor],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + WATCH_S
        while len(_starts(starts)) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 1, stderr.decode()[-2000:]  # the workers' own exit status
    times = _starts(starts)
    assert len(times) >= 4, (times, stderr.decode()[-2000:])
    # restarted at once after the 1st failure, then after 1 s, then 2 s (at once: ~0.3 s apart)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert gaps[1] >= 0.9 and gaps[2] >= 1.9, gaps
    assert b"starting another in 1 s (it keeps failing)" in stderr


def _starts(path: Path) -> list[float]:
    return [float(line) for line in path.read_text().split()] if path.exists() else []
