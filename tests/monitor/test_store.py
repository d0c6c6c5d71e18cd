"""The store side of monitoring: a log window read in chunks, unmatched feedback, stored results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from atoll.store.logwindow import count_unmatched_feedback, iter_log
from atoll.store.monitoring import list_results, save_results
from atoll.store.predlog import LogRecord, PredictionLog, record_feedback

START = datetime(2026, 4, 1, tzinfo=UTC)


def _record(i: int, at: datetime, model: str = "credit-risk", version: int = 1) -> LogRecord:
    return LogRecord(
        prediction_id=f"{model[:4]}-{version}-{i}",
        request_id=f"r{i}",
        created_at=at,
        model=model,
        version=version,
        role="primary",
        inputs={"age": 30 + i % 10, "purpose": "car"},
        outputs={"prediction": i % 2, "probabilities": {"0": 0.4, "1": 0.6}},
        latency_ms=1.5,
        key_id=None,
    )


def _write(engine: sa.Engine, tmp_path: Path, records: list[LogRecord]) -> None:
    log = PredictionLog(engine, tmp_path / "spill", durability="strict")
    log.start()
    log.submit(records).result(timeout=30)
    log.close()


def test_a_window_is_read_in_chunks_with_its_feedback(engine: sa.Engine, tmp_path: Path) -> None:
    inside = [_record(i, START + timedelta(minutes=i)) for i in range(120)]
    outside = [_record(1000 + i, START - timedelta(hours=1)) for i in range(5)]
    other = [_record(i, START, model="other") for i in range(5)]
    older = [_record(2000 + i, START, version=2) for i in range(5)]
    _write(engine, tmp_path, inside + outside + other + older)
    known = [(inside[i].prediction_id, i % 2) for i in range(0, 40)]
    record_feedback(engine, [*known, ("no-such-id", 1), ("nor-this", 0)], None)

    chunks = list(
        iter_log(
            engine,
            "credit-risk",
            since=START,
            until=START + timedelta(days=1),
            version=1,
            batch_rows=50,
        )
    )

    assert [len(c) for c in chunks] == [50, 50, 20]
    rows = [row for chunk in chunks for row in chunk]
    assert [r.prediction_id for r in rows] == [r.prediction_id for r in inside]
    assert sum(r.labelled for r in rows) == 40
    assert rows[1].label == 1 and rows[1].label_received_at is not None
    assert rows[50].labelled is False and rows[50].label is None
    assert count_unmatched_feedback(engine) == 2
    assert count_unmatched_feedback(engine, until=START) == 0


def test_results_are_stored_and_listed_newest_first(engine: sa.Engine) -> None:
    window = (START, START + timedelta(days=1))
    save_results(engine, "credit-risk", 3, window, {"drift": ("ok", {"psi": 0.01})})
    save_results(
        engine,
        "credit-risk",
        3,
        window,
        {"drift": ("alert", {"psi": 0.4}), "quality": ("no_data", {})},
    )

    drift = list_results(engine, "credit-risk", check="drift")
    assert [r.status for r in drift] == ["alert", "ok"]
    assert drift[0].result == {"psi": 0.4}
    assert drift[0].window_start == START and drift[0].version == 3
    assert len(list_results(engine, "credit-risk")) == 3
    assert list_results(engine, "credit-risk", version=9) == []
