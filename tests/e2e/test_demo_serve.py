"""``atoll demo`` ends by serving: the curl command it prints works as printed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.serve.running import free_port

ATOLL = Path(sys.executable).with_name("atoll")
READY_TIMEOUT_S = 300.0  # generating, training and loading on a shared 2-core machine


def wait_ready(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        code = process.poll()
        assert code is None, f"the demo exited ({code}):\n{log.read_text()}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the demo did not serve within {READY_TIMEOUT_S} s")


@pytest.mark.slow
def test_demo_serves_and_its_curl_command_predicts(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATOLL_")}
    output, errors = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    command = [str(ATOLL), "demo", "--dir", str(tmp_path / "demo"), "--rows", "3000"]
    with output.open("wb") as out, errors.open("wb") as err:
        process = subprocess.Popen(
            [*command, "--port", str(port)], cwd=tmp_path, env=env, stdout=out, stderr=err
        )
    try:
        wait_ready(process, port, errors)
        printed = output.read_text()
        key = re.search(r"^API key \(shown once\): (atoll_\S+)$", printed, re.MULTILINE)
        assert key, printed
        [curl] = [line for line in printed.splitlines() if line.startswith("curl ")]
        assert f"http://127.0.0.1:{port}/" in curl
        assert key.group(1) in curl

        result = subprocess.run(  # exactly as a user pastes it into a shell
            curl, shell=True, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        body = json.loads(result.stdout)
        assert (body["model"], body["version"]) == ("credit-risk", 1)
        [prediction] = body["predictions"]
        assert prediction["prediction"] in (0, 1)
        assert set(prediction["probabilities"]) == {"0", "1"}
        assert len(prediction["id"]) == 36
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert "Traceback" not in errors.read_text()
    assert code == 0, f"exit status {code} after SIGTERM"
