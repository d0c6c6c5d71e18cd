"""A log window read column by column gives the report that reading it row by row gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from atoll.monitor.checks import WindowChecks
from atoll.spec_serve import MonitorSpec
from atoll.store.logwindow import iter_log, iter_log_chunks
from atoll.store.predlog import LogRecord, PredictionLog, record_feedback
from tests.monitor.conftest import CATEGORICAL, NUMERIC, synthetic_frame, synthetic_reference

START = datetime(2026, 5, 1, tzinfo=UTC)
ROWS = 460


def _inputs(i: int, row: dict[Any, Any]) -> dict[str, Any]:
    """Logged inputs with what real traffic holds: gaps, odd kinds, dates as text."""
    inputs = dict(row) | {
        "sex": ["female", "male"][i % 2],
        "signed_up": f"2026-04-{1 + i % 28:02d}",
    }
    if i % 7 == 0:
        del inputs["x0"]  # a row without the column
    if i % 11 == 0:
        inputs["x1"] = None
    if 200 <= i < 250:
        inputs["c1"] = 36 if i % 2 else "b"  # numbers and text in one key: decoded one by one
    return inputs


def _write_window(engine: sa.Engine, tmp_path: Path) -> list[LogRecord]:
    rows = synthetic_frame(ROWS, seed=4).to_dict("records")
    scores = np.random.default_rng(4).uniform(size=ROWS).tolist()
    records = [
        LogRecord(
            prediction_id=f"chunked-{i}",
            request_id="r",
            created_at=START + timedelta(seconds=i),
            model="synthetic",
            version=1,
            role="primary",
            inputs=_inputs(i, row),
            outputs={"prediction": int(s > 0.5), "probabilities": {"0": 1 - s, "1": s}},
            latency_ms=1.0 + i % 13,
            key_id=None,
        )
        for i, (row, s) in enumerate(zip(rows, scores, strict=True))
    ]
    log = PredictionLog(engine, tmp_path / "spill", durability="strict")
    log.start()
    log.submit(records).result(timeout=30)
    log.close()
    labels = [(r.prediction_id, i % 2) for i, r in enumerate(records) if i % 3 == 0]
    record_feedback(engine, labels, None)
    return records


def test_chunks_hold_the_window_and_its_feedback(engine: sa.Engine, tmp_path: Path) -> None:
    records = _write_window(engine, tmp_path)

    chunks = list(iter_log_chunks(engine, "synthetic", since=START, version=1, batch_rows=100))

    assert [c.rows for c in chunks] == [100, 100, 100, 100, 60]
    assert chunks[0].first_at == START and chunks[-1].last_at == records[-1].created_at
    assert chunks[1].first_at == START + timedelta(seconds=100)
    assert sum(len(c.labelled) for c in chunks) == len(range(0, ROWS, 3))
    assert chunks[0].labelled[1].label == 1 and chunks[0].labelled[1].prediction_id == "chunked-3"
    assert chunks[0].inputs["x0"].isna().sum() == len(range(0, 100, 7))
    assert chunks[0].inputs["signed_up"].tolist()[:2] == ["2026-04-01", "2026-04-02"]
    assert chunks[0].outputs["probabilities.1"].tolist() == [
        r.outputs["probabilities"]["1"] for r in records[:100]
    ]


def test_the_columnar_and_the_row_by_row_reading_give_one_report(
    engine: sa.Engine, tmp_path: Path
) -> None:
    _write_window(engine, tmp_path)
    reference = synthetic_reference(synthetic_frame(2_000, seed=1), sensitive=("sex",))
    by_rows, by_columns = WindowChecks(reference), WindowChecks(reference)
    for rows in iter_log(engine, "synthetic", version=1, batch_rows=64):
        by_rows.add_logged(rows)
    for chunk in iter_log_chunks(engine, "synthetic", version=1, batch_rows=64):
        by_columns.add_chunk(chunk)

    def report(checks: WindowChecks) -> dict[str, Any]:
        made = checks.report(MonitorSpec(), source="log", window=(None, None)).to_dict()
        return {k: v for k, v in made.items() if k != "created_at"}

    assert report(by_columns) == report(by_rows)
    checks = report(by_columns)["checks"]
    drift = checks["drift"]["columns"]
    assert drift["x0"]["rows"] == ROWS - len(range(0, ROWS, 7))
    assert drift["c1"]["rows"] == ROWS and set(drift) == {*NUMERIC, *CATEGORICAL}
    assert checks["performance"]["labelled_rows"] == len(range(0, ROWS, 3))
    assert checks["fairness"]["columns"]["sex"]["groups"]["male"]["count"] == ROWS // 2


def test_a_reader_stopped_early_gives_its_connection_back(
    engine: sa.Engine, tmp_path: Path
) -> None:
    _write_window(engine, tmp_path)
    held = []
    sa.event.listen(engine, "checkout", lambda *_: held.append(1))
    sa.event.listen(engine, "checkin", lambda *_: held.append(-1))
    chunks = iter_log_chunks(engine, "synthetic", batch_rows=50)
    assert next(chunks).rows == 50
    assert sum(held) == 1

    chunks.close()

    assert sum(held) == 0 and len(held) == 2
