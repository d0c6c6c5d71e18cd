"""Client side of the whole-server tests: steady traffic, worker processes, the log.

``Traffic`` keeps a few threads asking for predictions and records every
answer (or transport error) with its monotonic times, so a test can reason
about what was acknowledged before an event. The other helpers look at the
server from outside: its worker processes and each one's own metric files
(to prove that *every* worker did something), and the prediction log.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from atoll import api
from atoll.store.db import create_engine_for
from atoll.store.predlog import LogRecord, read_log
from tests.serve.running import Project, Server

PREDICT_ROUTE = "/v1/models/{name}/predict"


@dataclass(frozen=True)
class Reply:
    """One request as the client saw it (``status`` None: a transport error)."""

    sent: float
    received: float
    status: int | None
    version: int | None = None
    ids: tuple[str, ...] = ()
    request_id: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200


def predict_path(project: Project) -> str:
    return f"/v1/models/{project.name}/predict"


def make_client(
    server: Server, key: str, *, fresh_connections: bool = False, timeout: float = 60.0
) -> httpx.Client:
    """A client of ``server`` with ``key``; ``fresh_connections`` opens a new TCP connection
    for every request, so the kernel hands successive requests to any worker."""
    limits = httpx.Limits(max_keepalive_connections=0) if fresh_connections else httpx.Limits()
    return httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=timeout,
        limits=limits,
    )


def ask(client: httpx.Client, project: Project, rows: list[dict[str, Any]]) -> Reply:
    """One predict request; never raises for transport errors (they are recorded)."""
    request_id = uuid.uuid4().hex
    sent = time.monotonic()
    try:
        response = client.post(
            predict_path(project), json={"instances": rows}, headers={"X-Request-ID": request_id}
        )
    except httpx.TransportError as error:
        return Reply(sent, time.monotonic(), None, request_id=request_id, error=repr(error))
    received = time.monotonic()
    if response.status_code != 200:
        return Reply(
            sent, received, response.status_code, request_id=request_id, error=response.text[:500]
        )
    body = response.json()
    ids = tuple(p["id"] for p in body["predictions"])
    return Reply(sent, received, 200, body["version"], ids, request_id)


@dataclass
class Traffic:
    """Threads that keep predicting until stopped; every reply is kept, in order.

    With ``fresh_connections``, every other thread opens a new connection per
    request (so several workers get traffic) and the rest keep theirs alive.
    """

    server: Server
    key: str
    rows: list[dict[str, Any]]
    threads: int = 3
    fresh_connections: bool = False
    pause_s: float = 0.0
    _replies: list[Reply] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Traffic:
        for i in range(self.threads):
            fresh = self.fresh_connections and i % 2 == 0
            thread = threading.Thread(target=self._run, args=(fresh,), name=f"traffic-{i}")
            thread.start()
            self._workers.append(thread)
        return self

    def stop(self) -> list[Reply]:
        self._stop.set()
        for thread in self._workers:
            thread.join(120)
        assert not any(t.is_alive() for t in self._workers), "a traffic thread is stuck"
        return self.replies()

    def replies(self) -> list[Reply]:
        with self._lock:
            return list(self._replies)

    def wait_for_replies(self, n: int, timeout_s: float = 120.0) -> None:
        """Until at least ``n`` replies came back (a bound on waiting, not a speed check)."""
        wait_until(lambda: len(self.replies()) >= n, timeout_s, f"{n} replies")

    def _run(self, fresh: bool) -> None:
        project = self.server.project
        with make_client(self.server, self.key, fresh_connections=fresh) as client:
            while not self._stop.is_set():
                reply = ask(client, project, self.rows)
                with self._lock:
                    self._replies.append(reply)
                if reply.status is None and self.server.process.poll() is not None:
                    time.sleep(0.01)  # the server is gone: do not spin until told to stop
                if self.pause_s:
                    time.sleep(self.pause_s)

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what} after {timeout_s} s"
        time.sleep(0.05)


def new_key(project: Project, *scopes: str) -> tuple[str, str]:
    """A fresh key: ``(key_id, plaintext)``; its key id tells this test's log rows apart."""
    key, plaintext = api.create_key(list(scopes or ("predict",)), settings=project.settings)
    return key.key_id, plaintext


@contextmanager
def log_engine(project: Project) -> Iterator[sa.Engine]:
    engine = create_engine_for(project.settings.db_url)
    try:
        yield engine
    finally:
        engine.dispose()


def log_records(project: Project, key_id: str | None = None) -> list[LogRecord]:
    """Every record in the prediction log (of one key, if given)."""
    with log_engine(project) as engine:
        records = read_log(engine, limit=10_000_000)
    return [r for r in records if key_id is None or r.key_id == key_id]


def acknowledged(replies: list[Reply]) -> list[str]:
    """The prediction ids of every 200 answer."""
    return [pid for reply in replies if reply.ok for pid in reply.ids]


# ---- worker processes and their own metric files ----


def worker_pids(server: Server) -> list[int]:
    """The worker processes of a ``--workers N`` server (children running spawn_main)."""
    parent = str(server.process.pid)
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = stat.rsplit(")", 1)[1].split()[1]
        if ppid == parent and b"spawn_main" in cmdline:
            pids.append(int(entry.name))
    return sorted(pids)


def metrics_dir(pid: int) -> Path:
    """Where a worker writes its metric files (``PROMETHEUS_MULTIPROC_DIR`` of its environment)."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    for item in environ:
        name, _, value = item.partition(b"=")
        if name == b"PROMETHEUS_MULTIPROC_DIR":
            return Path(os.fsdecode(value))
    raise AssertionError(f"worker {pid} has no PROMETHEUS_MULTIPROC_DIR")


def worker_counter(pid: int, sample: str, **labels: str) -> float:
    """One counter sample as a single worker counted it (from that worker's own file)."""
    path = metrics_dir(pid) / f"counter_{pid}.db"
    if not path.exists():
        return 0.0
    total = 0.0
    for metric in MultiProcessCollector.merge([str(path)]):
        for s in metric.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def scraped(server: Server, sample: str, **labels: str) -> float:
    """A sample's value in ``/metrics`` (summed over matching label sets; 0 when absent)."""
    response = server.client.get("/metrics")
    assert response.status_code == 200, response.text
    total = 0.0
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total
