"""A real ``atoll serve`` process on a free port, for tests that need the whole server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from atoll import api
from atoll.settings import Settings
from tests.conftest import write_demo_project

START_TIMEOUT_S = 90.0

TEST_SERVE = {
    "drain_s": 0,
    "reload_interval_s": 0.5,
    "rate_limit": {"per_key_per_s": 10_000, "burst": 10_000, "auth_failures_per_min": 1_000},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Project:
    """A trained, promoted demo project and an admin key for it."""

    root: Path
    settings: Settings
    key: str
    name: str = "credit-risk"

    def set_spec(self, **sections: Any) -> None:
        """Replace top-level sections of atoll.yaml (e.g. ``serve={...}``)."""
        path = self.root / "atoll.yaml"
        spec = yaml.safe_load(path.read_text())
        spec.update(sections)
        path.write_text(yaml.safe_dump(spec, sort_keys=False))


def make_project(root: Path, *, db_url: str | None = None, **sections: Any) -> Project:
    spec_path = write_demo_project(root, serve=TEST_SERVE, **sections)
    settings = Settings.from_env(project_dir=root, environ=_environ(db_url))
    outcome = api.train(spec_path, settings=settings)
    api.promote(f"{outcome.version.name}@{outcome.version.version}", settings=settings)
    _, key = api.create_key(["admin"], settings=settings)
    return Project(root, settings, key)


def _environ(db_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATOLL_")}
    if db_url:
        env["ATOLL_DB_URL"] = db_url
    return env


@dataclass
class Server:
    """A running server process; ``client`` carries the admin key."""

    project: Project
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.project.key}"}, timeout=30
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)


@dataclass(frozen=True)
class Served:
    """A module's running server, its project and demo rows to send it."""

    project: Project
    server: Server
    rows: list[dict[str, Any]]


def start_server(project: Project, *args: str, workers: int = 1, wait: bool = True) -> Server:
    """``atoll serve`` in a subprocess, ready (``/readyz`` 200) when this returns."""
    port = free_port()
    log_path = project.root / f"server-{port}.log"
    env = _environ(project.settings.db_url if "sqlite" not in project.settings.db_url else None)
    command = [sys.executable, "-m", "atoll", "-C", str(project.root), "serve"]
    command += ["--port", str(port), "--workers", str(workers), *args]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    server = Server(project, process, port, log_path)
    if wait:
        wait_ready(server)
    return server


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited ({server.process.returncode}):\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"the server was not ready in {START_TIMEOUT_S} s:\n{server.log()}")
