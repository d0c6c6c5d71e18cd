from __future__ import annotations

import dataclasses
import fcntl
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
import sqlalchemy as sa

from atoll.store import predlog
from atoll.store._logsql import to_row
from atoll.store._spill import SpillFile, spill_files
from atoll.store.db import create_engine_for, migrate, transaction
from atoll.store.predlog import (
    LogRecord,
    LogRequest,
    PredictionLog,
    count_log,
    read_log,
    record_feedback,
    write_now,
)
from tests.conftest import POSTGRES_ENV

WAIT_S = 60.0  # a generous bound on waiting for the writer; never a speed assertion


@pytest.fixture
def spill_dir(tmp_path: Path) -> Path:
    return tmp_path / "spill"


def record(i: int, model: str = "credit-risk", role: str = "primary") -> LogRecord:
    return LogRecord(
        prediction_id=str(uuid.UUID(int=i)),
        request_id=f"req-{i // 4}",
        created_at=datetime(2026, 5, 16, 12, 0, i % 60, tzinfo=UTC),
        model=model,
        version=3,
        role=role,
        inputs={"age": i, "income": 1000.5 * i, "city": "Lyon", "missing": None},
        outputs={"prediction": i % 2, "probabilities": {"0": 0.25, "1": 0.75}},
        latency_ms=0.5 + i,
        key_id="0123456789ab" if i % 2 else None,
    )


def records(start: int, stop: int) -> list[LogRecord]:
    return [record(i) for i in range(start, stop)]


def stored_ids(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(sa.text("SELECT prediction_id FROM prediction_log"))]


def expect_exactly_once(engine: sa.Engine, expected: list[LogRecord]) -> None:
    ids = stored_ids(engine)
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(r.prediction_id for r in expected)


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "the prediction log writer never got there"
        time.sleep(0.02)


@contextmanager
def opened(log: PredictionLog) -> Iterator[PredictionLog]:
    log.start()
    try:
        yield log
    finally:
        log.close()


@contextmanager
def store_down(url: str) -> Iterator[None]:
    """Make the database really unreachable, then bring it back.

    SQLite: the database's folder is renamed away, so opening it fails (this
    holds even for root, unlike file permissions). PostgreSQL: the database
    stops accepting connections and its open ones are terminated.
    """
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        folder = Path(parsed.database or "").parent
        away = folder.with_name(folder.name + ".away")
        folder.rename(away)
        try:
            yield
        finally:
            away.rename(folder)
        return
    name = parsed.database
    admin = sa.create_engine(os.environ[POSTGRES_ENV], isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
        try:
            yield
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    finally:
        admin.dispose()


def test_batched_log_writes_every_record_by_close(engine: sa.Engine, spill_dir: Path) -> None:
    expected = records(0, 600)
    with opened(PredictionLog(engine, spill_dir, max_batch=50)) as log:

        def submit_some(start: int) -> None:
            for i in range(start, start + 200, 4):
                log.submit(expected[i : i + 4])

        threads = [threading.Thread(target=submit_some, args=(s,)) for s in (0, 200, 400)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    expect_exactly_once(engine, expected)
    stats = log.stats
    assert (stats.written, stats.spilled, stats.pending, stats.spilling) == (600, 0, 0, False)
    assert spill_files(spill_dir) == []
    newest = read_log(engine, limit=1)[0]
    assert newest == next(r for r in expected if r.prediction_id == newest.prediction_id)


def test_strict_future_resolves_only_once_committed(store_url: str, spill_dir: Path) -> None:
    patient = create_engine_for(store_url, busy_timeout_ms=120_000)
    other = create_engine_for(store_url)
    try:
        migrate(patient)
        log = PredictionLog(patient, spill_dir, durability="strict")
        with opened(log):
            with transaction(other) as blocker:
                if blocker.dialect.name == "postgresql":
                    blocker.exec_driver_sql("LOCK TABLE prediction_log IN EXCLUSIVE MODE")
                else:
                    blocker.exec_driver_sql("SELECT 1")  # BEGIN IMMEDIATE holds the write lock
                future = log.submit(records(0, 5))
                with pytest.raises(TimeoutError):
                    future.result(timeout=0.5)  # cannot commit while the lock is held
            future.result(timeout=WAIT_S)
            assert count_log(other) == 5  # a second engine sees it the moment it resolves
            assert log.stats.spilled == 0
    finally:
        patient.dispose()
        other.dispose()


def test_inserts_are_idempotent(engine: sa.Engine, spill_dir: Path) -> None:
    batch = records(0, 10)
    with opened(PredictionLog(engine, spill_dir, durability="strict")) as log:
        log.submit(batch).result(timeout=WAIT_S)
        log.submit(batch[3:7] + records(10, 12)).result(timeout=WAIT_S)
    expect_exactly_once(engine, records(0, 12))
    # A spill file holding records already committed replays without duplicates.
    leftover = SpillFile(spill_dir)
    leftover.append([to_row(r) for r in records(8, 14)])
    leftover.close()
    with opened(PredictionLog(engine, spill_dir)) as log:
        pass
    expect_exactly_once(engine, records(0, 14))
    assert log.stats.replayed == 6


def test_write_now_commits_batches_in_one_transaction_and_ignores_known_ids(
    engine: sa.Engine,
) -> None:
    """What a batch job uses: its own moment, several inserts, and a resume re-inserts."""
    assert write_now(engine, lambda: iter([rows_of(0, 4), rows_of(4, 10)])) == 10
    expect_exactly_once(engine, records(0, 10))
    assert write_now(engine, lambda: iter([rows_of(6, 12)])) == 6  # 6-9 already stored
    expect_exactly_once(engine, records(0, 12))
    assert {r.role for r in read_log(engine)} == {"primary"}
    batch = [to_row(dataclasses.replace(r, role="batch")) for r in records(20, 22)]
    write_now(engine, lambda: iter([batch]))
    assert {r.role for r in read_log(engine, limit=2)} == {"batch"}


def test_rows_beyond_one_statement_are_all_written_as_they_were_given(engine: sa.Engine) -> None:
    """The insert packs many rows per statement: 2,345 rows take three, replays included."""
    many = records(0, 2_345)
    assert write_now(engine, lambda: iter([[to_row(r) for r in many]])) == 2_345
    # a replay overlapping both ends of a statement's rows stores nothing twice
    assert write_now(engine, lambda: iter([rows_of(990, 2_010)])) == 1_020
    expect_exactly_once(engine, many)
    stored = {r.prediction_id: r for r in read_log(engine, limit=3_000)}
    assert [stored[r.prediction_id] for r in many] == many


def test_write_now_writes_nothing_when_a_record_is_refused(engine: sa.Engine) -> None:
    refused = dataclasses.replace(record(3), role="nightly")
    with pytest.raises(ValueError, match="unknown log record role 'nightly'"):
        write_now(engine, lambda: iter([rows_of(0, 3), [to_row(refused)]]))
    assert count_log(engine) == 0


def rows_of(start: int, stop: int) -> list[dict[str, Any]]:
    return [to_row(r) for r in records(start, stop)]


def test_the_rows_of_one_request_are_the_rows_of_its_records(
    engine: sa.Engine, spill_dir: Path
) -> None:
    """One request's rows are checked once, yet equal what a record at a time gives."""
    some = records(0, 3)
    first = some[0]
    request = LogRequest(
        request_id=first.request_id,
        created_at=first.created_at,
        model=first.model,
        version=first.version,
        role=first.role,
        latency_ms=first.latency_ms,
        key_id=first.key_id,
    )
    shared = {
        "request_id": first.request_id,
        "created_at": first.created_at,
        "latency_ms": first.latency_ms,
        "key_id": first.key_id,
    }
    same = [dataclasses.replace(r, **shared) for r in some]
    names = list(same[0].inputs)
    inputs = {name: [r.inputs[name] for r in same] for name in names}
    ids = [r.prediction_id for r in same]
    outputs = [r.outputs for r in same]

    assert request.rows(ids, inputs, outputs) == [to_row(r) for r in same]
    with pytest.raises(ValueError, match="prediction_id"):
        request.rows(["x" * 37], {name: values[:1] for name, values in inputs.items()}, outputs[:1])
    with pytest.raises(ValueError, match="unknown log record role"):
        dataclasses.replace(request, role="nightly").rows(ids, inputs, outputs)

    with opened(PredictionLog(engine, spill_dir, durability="strict")) as log:
        log.submit_later(len(ids), lambda: request.rows(ids, inputs, outputs)).result(
            timeout=WAIT_S
        )
    expect_exactly_once(engine, same)


def test_validated_numpy_columns_are_logged_as_plain_json() -> None:
    """Numbers as numbers, datetimes as ISO text to the microsecond, and NaT as null.

    orjson alone would write NaT as 1677-09-21T00:12:43.145224: a date, not a null.
    """
    request = LogRequest("r", datetime.now(UTC), "m", 1, "primary", 1.0, None)
    stamps = ["2024-01-02T03:04:05", "2024-01-02T03:04:05.123456789", "NaT", "1970-01-01"]
    inputs = {
        "when": np.array(stamps, dtype="datetime64[ns]"),
        "x": np.array([1.5, np.nan, -0.0, 1e22]),
        "flag": np.array([True, False, True, False]),
        "name": np.array(["a", None, "b", "c"], dtype=object),
    }
    rows = request.rows([f"id-{i}" for i in range(4)], inputs, [{"prediction": 0}] * 4)
    logged = [orjson.loads(row["inputs"]) for row in rows]
    assert [row["when"] for row in logged] == [
        "2024-01-02T03:04:05",
        "2024-01-02T03:04:05.123456",
        None,
        "1970-01-01T00:00:00",
    ]
    assert [row["x"] for row in logged] == [1.5, None, -0.0, 1e22]
    assert [row["flag"] for row in logged] == [True, False, True, False]
    assert [row["name"] for row in logged] == ["a", None, "b", "c"]
    one = {name: values[:1] for name, values in inputs.items()}  # as orjson writes numpy's
    scalars = {name: values[0] for name, values in one.items()}
    assert rows[0]["inputs"] == orjson.dumps(scalars, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def test_store_down_mid_run_spills_then_replays_every_record_exactly_once(
    store_url: str, engine: sa.Engine, spill_dir: Path
) -> None:
    log = PredictionLog(engine, spill_dir, durability="strict", retry_interval_s=0.1)
    with opened(log):
        log.submit(records(0, 20)).result(timeout=WAIT_S)
        assert log.stats.written == 20
        with store_down(store_url):
            futures = [log.submit([r]) for r in records(20, 60)]
            for future in futures:  # durable in the spill file: acknowledged
                assert future.result(timeout=WAIT_S) is None
            assert log.stats.spilling and log.stats.spilled == 40
            assert spill_files(spill_dir)
        wait_until(lambda: not log.stats.spilling and not spill_files(spill_dir))
        log.submit(records(60, 80)).result(timeout=WAIT_S)
    expect_exactly_once(engine, records(0, 80))
    stats = log.stats
    assert (stats.written, stats.spilled, stats.replayed, stats.failed) == (40, 40, 40, 0)


def test_records_spilled_while_down_at_close_are_replayed_by_the_next_start(
    store_url: str, engine: sa.Engine, spill_dir: Path
) -> None:
    with store_down(store_url):
        log = PredictionLog(engine, spill_dir, retry_interval_s=0.1)
        with opened(log):
            for i in range(0, 30, 3):
                log.submit(records(i, i + 3))
        assert log.stats.spilled == 30 and log.stats.written == 0
        assert spill_files(spill_dir)
    with opened(PredictionLog(engine, spill_dir)) as again:
        pass
    assert again.stats.replayed == 30
    expect_exactly_once(engine, records(0, 30))
    assert spill_files(spill_dir) == []


CRASHING_WRITER = """
import os, sys, uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from atoll.store.db import create_engine_for
from atoll.store.predlog import LogRecord, PredictionLog

engine = create_engine_for(sys.argv[1])  # never migrated: every insert fails
log = PredictionLog(engine, Path(sys.argv[2]), durability="strict")
log.start()
for i in range(int(sys.argv[3])):
    record = LogRecord(str(uuid.UUID(int=i)), "r", datetime.now(UTC), "m", 1, "shadow",
                       {"x": i}, {"prediction": 0}, 1.0, None)
    log.submit([record]).result(timeout=60)
print(log.stats.spilled, flush=True)
os._exit(0)  # killed: no close(), no cleanup
"""


def test_a_previous_process_leftover_spill_file_is_replayed_at_start(
    engine: sa.Engine, spill_dir: Path, tmp_path: Path
) -> None:
    broken = f"sqlite:///{tmp_path / 'broken' / 'empty.db'}"
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER, broken, str(spill_dir), "25"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "25"
    assert len(spill_files(spill_dir)) == 1
    with opened(PredictionLog(engine, spill_dir)) as log:
        pass
    assert log.stats.replayed == 25
    assert count_log(engine, "m") == 25
    assert {r.role for r in read_log(engine, model="m")} == {"shadow"}
    assert spill_files(spill_dir) == []


def test_a_spill_file_another_process_holds_is_left_alone(
    engine: sa.Engine, spill_dir: Path
) -> None:
    held = SpillFile(spill_dir)  # as another live process's current file
    held.append([to_row(r) for r in records(0, 4)])
    path = spill_files(spill_dir)[0]
    with path.open("rb") as probe, pytest.raises(BlockingIOError):
        fcntl.flock(probe.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    with opened(PredictionLog(engine, spill_dir)) as log:
        pass
    assert log.stats.replayed == 0 and count_log(engine) == 0
    assert spill_files(spill_dir) == [path]
    held.close()
    with opened(PredictionLog(engine, spill_dir)) as log:
        pass
    assert log.stats.replayed == 4
    expect_exactly_once(engine, records(0, 4))


def test_a_full_queue_spills_instead_of_dropping(engine: sa.Engine, spill_dir: Path) -> None:
    log = PredictionLog(engine, spill_dir, queue_size=5)
    queued = [log.submit([r]) for r in records(0, 5)]  # not started: nothing drains the queue
    overflow = [log.submit([r]) for r in records(5, 8)]
    assert not any(f.done() for f in queued)
    assert all(f.done() and f.exception() is None for f in overflow)  # durable on disk already
    assert (log.stats.pending, log.stats.spilled) == (5, 3)
    with opened(log):
        pass
    expect_exactly_once(engine, records(0, 8))
    assert (log.stats.written, log.stats.replayed, log.stats.pending) == (5, 3, 0)


def test_submitting_after_close_spills_for_the_next_start(
    engine: sa.Engine, spill_dir: Path
) -> None:
    with opened(PredictionLog(engine, spill_dir)) as log:
        pass
    late: Future[None] = log.submit(records(0, 2))
    assert late.done() and log.stats.spilled == 2
    with opened(PredictionLog(engine, spill_dir)):
        pass
    expect_exactly_once(engine, records(0, 2))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"role": "leader"}, "role"),
        ({"created_at": datetime(2026, 1, 1)}, "timezone-aware"),
        ({"prediction_id": "x" * 37}, "prediction_id"),
        ({"key_id": "k\x00"}, "key_id"),
        ({"latency_ms": float("nan")}, "latency_ms"),
        ({"inputs": {"when": object()}}, "inputs"),
        ({"model": "../etc"}, "model name"),
    ],
)
def test_records_the_table_would_refuse_are_refused_at_submit(
    engine: sa.Engine, spill_dir: Path, change: dict[str, object], message: str
) -> None:
    fields = {**record(0).__dict__, **change}
    log = PredictionLog(engine, spill_dir)
    with pytest.raises(ValueError, match=message):
        log.submit([record(1), LogRecord(**fields)])  # type: ignore[arg-type]
    assert log.stats.pending == 0
    log.close()


def test_rows_submitted_later_are_built_by_the_writer_and_written(
    engine: sa.Engine, spill_dir: Path
) -> None:
    built_on: list[str] = []

    def builder(start: int, stop: int) -> Callable[[], list[dict[str, Any]]]:
        def build() -> list[dict[str, Any]]:
            built_on.append(threading.current_thread().name)
            return [to_row(r) for r in records(start, stop)]

        return build

    with opened(PredictionLog(engine, spill_dir, flush_interval_s=0.05)) as log:
        futures = [log.submit_later(3, builder(i, i + 3)) for i in range(0, 30, 3)]
        for future in futures:
            future.result(timeout=WAIT_S)
    expect_exactly_once(engine, records(0, 30))
    assert set(built_on) == {"atoll-predlog"}  # never on the submitting thread
    assert (log.stats.written, log.stats.failed) == (30, 0)


def test_the_writer_lets_the_gil_go_between_slices_only_while_it_keeps_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    yields: list[float] = []
    monkeypatch.setattr(predlog.time, "sleep", yields.append)
    keeping_up = True
    pace = predlog._Pacer(lambda: keeping_up, slice_s=0.0)
    pace()
    pace()
    assert yields == [0, 0]
    keeping_up = False  # behind: yielding to a busy event loop would leave it further behind
    pace()
    assert yields == [0, 0]
    slow = predlog._Pacer(lambda: True, slice_s=3600.0)
    slow()
    assert yields == [0, 0]  # within its slice: no yield


def test_a_writer_yields_early_only_when_batched_beside_an_event_loop_and_keeping_up(
    engine: sa.Engine, spill_dir: Path
) -> None:
    # strict: every waiting request is answered at the commit, so the writer is the critical path
    assert not PredictionLog(engine, spill_dir, durability="strict")._pacer().keeping_up()
    batched = PredictionLog(engine, spill_dir, max_batch=2)
    assert batched._pacer().keeping_up()
    batched.submit([record(1), record(2)])  # not started: two rows wait, a full batch
    assert not batched._pacer().keeping_up()
    # alone in its process (the log process): no event loop to yield to
    assert not PredictionLog(engine, spill_dir, shares_gil=False)._pacer().keeping_up()


def refused() -> list[dict[str, Any]]:
    """A row builder whose row the table refuses (an unknown role)."""
    return [to_row(dataclasses.replace(record(99), role="leader"))]


def test_a_refused_later_record_fails_its_own_future_and_the_batch_is_written(
    engine: sa.Engine, spill_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = PredictionLog(engine, spill_dir)
    good = log.submit_later(2, lambda: [to_row(r) for r in records(0, 2)])
    bad = log.submit_later(1, refused)
    later = log.submit_later(2, lambda: [to_row(r) for r in records(2, 4)])
    with opened(log):  # all three are taken in one batch
        pass
    assert good.result(timeout=WAIT_S) is None and later.result(timeout=WAIT_S) is None
    with pytest.raises(ValueError, match="role"):
        bad.result(timeout=WAIT_S)
    expect_exactly_once(engine, records(0, 4))
    assert (log.stats.written, log.stats.failed, log.stats.pending) == (4, 1, 0)
    assert "a prediction log record was refused" in caplog.text


def test_rows_queued_later_without_a_future_are_written_and_refusals_counted(
    engine: sa.Engine, spill_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = PredictionLog(engine, spill_dir)
    log.queue_later(2, lambda: [to_row(r) for r in records(0, 2)])
    log.queue_later(1, refused)
    log.queue_later(0, refused)  # nothing to build: never called
    log.queue_later(2, lambda: [to_row(r) for r in records(2, 4)])
    with opened(log):
        pass
    expect_exactly_once(engine, records(0, 4))
    assert (log.stats.written, log.stats.failed, log.stats.pending) == (4, 1, 0)
    assert caplog.text.count("a prediction log record was refused") == 1


def test_rows_submitted_later_to_a_full_queue_are_spilled_then_replayed(
    engine: sa.Engine, spill_dir: Path
) -> None:
    log = PredictionLog(engine, spill_dir, queue_size=2)
    queued = log.submit_later(2, lambda: [to_row(r) for r in records(0, 2)])
    spilled = log.submit_later(2, lambda: [to_row(r) for r in records(2, 4)])
    assert spilled.done() and not queued.done()
    with opened(log):
        pass
    expect_exactly_once(engine, records(0, 4))
    assert (log.stats.written, log.stats.spilled, log.stats.replayed) == (2, 2, 2)


def test_json_values_round_trip(engine: sa.Engine, spill_dir: Path) -> None:
    odd = LogRecord(
        **{
            **record(0).__dict__,
            "inputs": {
                "f": np.float32(1.5),
                "i": np.int64(7),
                "nan": float("nan"),
                "s": "é",
                "t": pd.Timestamp("2026-05-16T10:00:00Z"),
            },
            "outputs": {"prediction": "yes", "probabilities": {"no": 0.1, "yes": 0.9}},
        }
    )
    with opened(PredictionLog(engine, spill_dir, durability="strict")) as log:
        log.submit([odd]).result(timeout=WAIT_S)
    (back,) = read_log(engine)
    assert back.inputs == {
        "f": 1.5,
        "i": 7,
        "nan": None,
        "s": "é",
        "t": "2026-05-16T10:00:00+00:00",
    }
    assert back.outputs == odd.outputs and back.created_at == odd.created_at


def test_read_and_count_by_model(engine: sa.Engine, spill_dir: Path) -> None:
    mixed = [record(i, model="a" if i % 3 else "b") for i in range(30)]
    with opened(PredictionLog(engine, spill_dir)) as log:
        log.submit(mixed)
    assert count_log(engine) == 30 and count_log(engine, "a") == 20 and count_log(engine, "b") == 10
    newest_b = read_log(engine, model="b", limit=3)
    assert [r.prediction_id for r in newest_b] == [mixed[i].prediction_id for i in (27, 24, 21)]
    assert read_log(engine, model="c") == []


def test_feedback_is_upserted_by_prediction_id(engine: sa.Engine) -> None:
    assert record_feedback(engine, [], None) == 0
    stored = record_feedback(engine, [("p1", 1), ("p2", {"label": "yes"}), ("p1", 0)], "k1")
    assert stored == 2  # one call naming p1 twice: the last label wins
    assert record_feedback(engine, [("p2", "no"), ("never-logged", 3.5)], None) == 2
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT prediction_id, label, key_id FROM feedback ORDER BY prediction_id")
        ).all()
    assert [tuple(row) for row in rows] == [
        ("never-logged", "3.5", None),
        ("p1", "0", "k1"),
        ("p2", '"no"', None),
    ]
    with pytest.raises(ValueError, match="prediction_id"):
        record_feedback(engine, [("x" * 40, 1)], None)
