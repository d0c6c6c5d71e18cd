"""The prediction log under crashes, outages and shutdown, against a real ``atoll serve``.

- kill -9 under load: ``strict`` loses no acknowledged record; ``batched`` loses
  only records answered within the flush window before the kill;
- the store goes away mid-run and comes back: predictions keep being served
  (spilled to an fsynced file), ``/readyz`` says degraded (batched) or not ready
  (strict), and every acknowledged record ends up logged once;
- SIGTERM with requests in flight: all answered, exit 0, one log row per answer.

The SQLite database lives in its own folder (``store.url``), so the test can
make it vanish by renaming that folder while the artifacts and spill files stay.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from atoll import api
from atoll.store.predlog import PredictionLog
from tests.serve.running import TEST_SERVE, Project, Server, make_project, start_server
from tests.serve.traffic import (
    Reply,
    Traffic,
    acknowledged,
    ask,
    log_engine,
    log_records,
    make_client,
    new_key,
    scraped,
    wait_until,
)
from tests.store.test_predlog import store_down

pytestmark = pytest.mark.slow

FLUSH_MS = 200
SLACK_S = 1.0
"""Added to the flush window: the writer's own commit and scheduling on a loaded machine."""
WAIT_S = 60.0  # bounds on waiting for the server or the writer, never speed checks
IN_FLIGHT = 16


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("durability") / "project"
    url = f"sqlite:///{root / 'state' / 'atoll.db'}"
    return make_project(root, db_url=url, store={"url": url})


def spill_dir(project: Project) -> Path:
    return project.settings.artifact_root.parent / "spill"


def spill_files(project: Project) -> list[Path]:
    return sorted(spill_dir(project).glob("spill-*.jsonl"))


def started(
    project: Project, *, durability: str, writer: str = "process", **serve: object
) -> Server:
    project.set_spec(
        serve={**TEST_SERVE, **serve},
        monitor={"log": {"durability": durability, "flush_ms": FLUSH_MS, "writer": writer}},
    )
    return start_server(project)


def recover(project: Project) -> None:
    """What the next start does first: replay the spill files a dead server left.

    With the database up, a kill leaves none in practice (nothing spills); any
    that exist must hold acknowledged records, so they count as logged only
    once replayed. The SQLite file must come out of the kill intact.
    """
    with log_engine(project) as engine:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
        writer = PredictionLog(engine, spill_dir(project))
        writer.start()
        writer.close()
    assert spill_files(project) == []


def kill_under_load(project: Project, server: Server, key: str) -> tuple[list[Reply], float]:
    """kill -9 the server while six threads predict; the replies and the moment of the kill.

    The kill waits until hundreds of answers are older than the flush window
    (plus slack), so the batched bound is not true merely because every
    answer was recent.
    """
    rows = api.demo_request_rows(project.root, 1)
    window = FLUSH_MS / 1000 + SLACK_S

    def settled() -> bool:
        horizon = time.monotonic() - window
        return sum(r.ok and r.received < horizon for r in traffic.replies()) >= 300

    with Traffic(server, key, rows, threads=6, fresh_connections=True) as traffic:
        wait_until(settled, WAIT_S * 2, "300 answers older than the flush window")
        server.process.kill()
        killed_at = time.monotonic()
        server.process.wait(WAIT_S)
    server.stop()
    return traffic.replies(), killed_at


@pytest.mark.parametrize("writer", ["process", "thread"])
def test_kill_9_in_strict_mode_loses_no_acknowledged_record(project: Project, writer: str) -> None:
    key_id, key = new_key(project)
    server = started(project, durability="strict", writer=writer)
    replies, _ = kill_under_load(project, server, key)
    recover(project)
    logged = [r.prediction_id for r in log_records(project, key_id)]
    assert len(logged) == len(set(logged))
    missing = set(acknowledged(replies)) - set(logged)
    assert missing == set(), f"{len(missing)} acknowledged records lost in strict mode"


def test_kill_9_in_batched_mode_loses_at_most_the_flush_window(project: Project) -> None:
    key_id, key = new_key(project)
    server = started(project, durability="batched")
    replies, killed_at = kill_under_load(project, server, key)
    recover(project)
    logged = [r.prediction_id for r in log_records(project, key_id)]
    assert len(logged) == len(set(logged))
    window_start = killed_at - FLUSH_MS / 1000 - SLACK_S
    recent = {pid for r in replies if r.ok and r.received >= window_start for pid in r.ids}
    missing = set(acknowledged(replies)) - set(logged)
    assert missing <= recent, (
        f"{len(missing - recent)} records answered more than {FLUSH_MS} ms (+{SLACK_S} s) "
        "before the kill are missing"
    )


@dataclass(frozen=True)
class Outage:
    project: Project
    url: str
    durability: str

    def readiness(self, server: Server) -> tuple[int, dict[str, object]]:
        response = server.client.get("/readyz")
        return response.status_code, response.json()

    def spilling(self, server: Server) -> bool:
        """What ``/readyz`` must say while the store is away (research/security.md §2 row 10)."""
        if self.durability == "strict":  # the promise cannot be kept: out of the balancer
            expected = (503, {"ready": False, "reasons": ["prediction_log_unavailable"]})
        else:  # a shared dependency must not take every replica out at once
            expected = (200, {"ready": True, "degraded": ["prediction_log_spilling"]})
        return self.readiness(server) == expected

    def recovered(self, server: Server) -> bool:
        return self.readiness(server) == (200, {"ready": True})


@pytest.fixture(
    params=[("sqlite", "batched"), ("sqlite", "strict"), ("postgres", "batched")],
    ids=lambda p: "-".join(p),
)
def outage(request: pytest.FixtureRequest, project: Project, tmp_path: Path) -> Outage:
    """A project and its store URL, on SQLite (the module's) or a fresh PostgreSQL database."""
    store, durability = request.param
    if store == "sqlite":
        return Outage(project, project.settings.db_url, durability)
    url: str = request.getfixturevalue("postgres_url")
    return Outage(make_project(tmp_path / "project", db_url=url), url, durability)


def test_store_outage_spills_then_every_record_is_logged_once(outage: Outage) -> None:
    project = outage.project
    key_id, key = new_key(project)
    server = started(project, durability=outage.durability)
    rows = api.demo_request_rows(project.root, 1)
    try:
        with Traffic(server, key, rows, threads=3, pause_s=0.01) as traffic:
            traffic.wait_for_replies(30)
            with store_down(outage.url):
                wait_until(lambda: outage.spilling(server), WAIT_S, "/readyz to report the outage")
                during = len(traffic.replies())
                traffic.wait_for_replies(during + 30)
                assert outage.spilling(server)
                assert server.client.get("/healthz").status_code == 200
                assert spill_files(project)
            wait_until(lambda: outage.recovered(server), WAIT_S, "/readyz to recover")
            traffic.wait_for_replies(len(traffic.replies()) + 30)
        replies = traffic.replies()
        assert [r for r in replies if not r.ok] == []
        answered = acknowledged(replies)
        wait_until(lambda: len(log_records(project, key_id)) >= len(answered), WAIT_S, "the replay")
    finally:
        server.stop()
    logged = sorted(r.prediction_id for r in log_records(project, key_id))
    assert logged == sorted(answered)
    assert spill_files(project) == []


@pytest.mark.parametrize("writer", ["process", "thread"])
def test_sigterm_answers_every_request_in_flight_and_logs_each(
    project: Project, writer: str
) -> None:
    key_id, key = new_key(project)
    # a long batching window keeps requests in flight long enough to signal among them
    server = started(
        project,
        durability="batched",
        writer=writer,
        batching={"max_latency_ms": 1000, "max_batch_size": 10_000},
    )
    rows = api.demo_request_rows(project.root, 1)
    ready = threading.Barrier(IN_FLIGHT + 1)
    replies: list[Reply] = []

    def one_request() -> None:
        with make_client(server, key, fresh_connections=True) as client:
            ready.wait()
            replies.append(ask(client, project, rows))

    threads = [threading.Thread(target=one_request) for _ in range(IN_FLIGHT)]
    for thread in threads:
        thread.start()
    ready.wait()
    wait_until(  # every request is in the server (the scrape itself counts one)
        lambda: scraped(server, "atoll_in_flight_requests") >= IN_FLIGHT + 1,
        WAIT_S,
        f"{IN_FLIGHT} requests in flight",
    )
    server.process.send_signal(signal.SIGTERM)
    code = server.process.wait(WAIT_S)
    for thread in threads:
        thread.join(WAIT_S)
    server.stop()
    assert [r.status for r in replies] == [200] * IN_FLIGHT, [r.error for r in replies]
    logged = sorted(r.prediction_id for r in log_records(project, key_id))
    assert logged == sorted(acknowledged(replies))
    assert code == 0, f"exit status {code} after SIGTERM"
