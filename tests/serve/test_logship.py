"""A worker's log process, for real: a child process, pipes, a SQLite file."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from atoll.model.predictor import Prediction
from atoll.serve.errors import LogUnavailable
from atoll.serve.logframes import Answered, ProcessSettings
from atoll.serve.logship import LogProcess
from atoll.store.db import create_engine_for, migrate
from atoll.store.predlog import Durability, PredictionLog, read_log
from tests.serve.test_logframes import SCHEMA

WAIT_S = 60.0  # a bound on waiting for the process; never a speed check


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'atoll.db'}"
    engine = create_engine_for(url)
    migrate(engine)
    engine.dispose()
    return url


def settings(db_url: str, tmp_path: Path, durability: Durability = "batched") -> ProcessSettings:
    return ProcessSettings(
        db_url=db_url,
        spill_dir=str(tmp_path / "spill"),
        durability=durability,
        flush_interval_s=0.05,
        queue_size=10_000,
    )


def log_process(db_url: str, tmp_path: Path, durability: Durability = "batched") -> LogProcess:
    """A log process, and the worker's own writer it falls back on (started)."""
    engine = create_engine_for(db_url)
    fallback = PredictionLog(engine, tmp_path / "spill", durability=durability)
    fallback.start()
    return LogProcess(settings(db_url, tmp_path, durability), fallback)


async def started(db_url: str, tmp_path: Path, durability: Durability = "batched") -> LogProcess:
    """:func:`log_process`, started and up."""
    process = log_process(db_url, tmp_path, durability)
    process.start()
    assert await process.wait_ready(WAIT_S)
    return process


async def shut(process: LogProcess) -> None:
    await process.close()
    await asyncio.to_thread(process.fallback.close)
    process.fallback.engine.dispose()


def answer(i: int) -> Answered:
    return Answered(
        model="credit-risk",
        version=1,
        role="primary",
        schema=SCHEMA,
        columns={"x": [float(i)], "city": ["Lyon"]},
        prediction=Prediction(np.array([i % 2]), np.array([[0.25, 0.75]]), [0, 1]),
        ids=[f"p{i:035d}"],
        request_id=f"req-{i}",
        latency_ms=0.5,
        key_id=None,
    )


def logged(db_url: str) -> list[str]:
    engine = create_engine_for(db_url)
    try:
        return sorted(record.prediction_id for record in read_log(engine))
    finally:
        engine.dispose()


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.02)


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(main())


def test_batched_answers_are_all_written_by_close(db_url: str, tmp_path: Path) -> None:
    async def main() -> None:
        process = await started(db_url, tmp_path)
        assert process.accepting
        for i in range(300):
            assert process.send(answer(i), time.time(), answer(i).columns, wait=False) is None
            if i % 50 == 0:
                await asyncio.sleep(0)  # a few loop turns: several writes to the pipe
        await shut(process)
        assert process.stats.written == 300
        assert process.stats.pending == 0
        assert not process.accepting

    run(main)
    assert logged(db_url) == sorted(answer(i).ids[0] for i in range(300))


def test_a_strict_answer_is_acknowledged_once_it_is_in_the_database(
    db_url: str, tmp_path: Path
) -> None:
    async def main() -> None:
        process = await started(db_url, tmp_path, "strict")
        futures = [
            process.send(answer(i), time.time(), answer(i).columns, wait=True) for i in range(20)
        ]
        for i, future in enumerate(futures):
            assert future is not None
            await asyncio.wait_for(future, WAIT_S)
            assert answer(i).ids[0] in logged(db_url)
        await shut(process)

    run(main)


def test_a_refused_strict_answer_fails_its_own_future(db_url: str, tmp_path: Path) -> None:
    async def main() -> None:
        process = await started(db_url, tmp_path, "strict")
        bad = dataclasses.replace(answer(1), request_id="r" * 65)  # over 64 characters
        refused = process.send(bad, time.time(), bad.columns, wait=True)
        good = process.send(answer(2), time.time(), answer(2).columns, wait=True)
        assert refused is not None and good is not None
        with pytest.raises(ValueError, match="request_id"):
            await asyncio.wait_for(refused, WAIT_S)
        await asyncio.wait_for(good, WAIT_S)
        await shut(process)
        assert process.stats.failed == 1

    run(main)
    assert logged(db_url) == [answer(2).ids[0]]


def test_an_answer_json_cannot_hold_is_refused_by_the_worker_not_shipped(
    db_url: str, tmp_path: Path
) -> None:
    """Lines are encoded after the loop turn: one that cannot be stops only itself."""

    async def main() -> None:
        process = await started(db_url, tmp_path, "strict")
        bad = dataclasses.replace(answer(1), columns={"x": [object()], "city": ["Lyon"]})
        refused = process.send(bad, time.time(), bad.columns, wait=True)
        unwaited = process.send(bad, time.time(), bad.columns, wait=False)
        good = process.send(answer(2), time.time(), answer(2).columns, wait=True)
        assert refused is not None and unwaited is None and good is not None
        with pytest.raises(ValueError, match="not JSON-serialisable"):
            await asyncio.wait_for(refused, WAIT_S)
        await asyncio.wait_for(good, WAIT_S)
        await shut(process)
        assert process.stats.failed == 0  # the process never saw them
        assert process.fallback.stats.failed == 2  # the worker's writer refused both, counted

    run(main)
    assert logged(db_url) == [answer(2).ids[0]]


def test_a_killed_process_fails_its_waiters_and_is_restarted(db_url: str, tmp_path: Path) -> None:
    async def main() -> None:
        process = await started(db_url, tmp_path, "strict")
        first = process.send(answer(1), time.time(), answer(1).columns, wait=True)
        assert first is not None
        await asyncio.wait_for(first, WAIT_S)
        child = process._process
        assert child is not None
        os.kill(child.pid, signal.SIGSTOP)  # nothing it receives from now on is written
        waiting = process.send(answer(2), time.time(), answer(2).columns, wait=True)
        assert waiting is not None
        await asyncio.sleep(0.1)
        os.kill(child.pid, signal.SIGKILL)
        with pytest.raises(LogUnavailable):
            await asyncio.wait_for(waiting, WAIT_S)
        assert not process.accepting
        await until(lambda: process.accepting, "the log process restarted")
        again = process.send(answer(3), time.time(), answer(3).columns, wait=True)
        assert again is not None
        await asyncio.wait_for(again, WAIT_S)
        await shut(process)
        assert process.stats.written == 2
        assert process.stats.failed == 1  # the answer the killed process never wrote

    run(main)
    assert logged(db_url) == sorted([answer(1).ids[0], answer(3).ids[0]])


def test_the_worker_vanishing_makes_the_process_write_out_and_exit(
    db_url: str, tmp_path: Path
) -> None:
    """What kill -9 of a worker leaves: the process sees its input end, writes, and exits."""

    async def main() -> None:
        process = await started(db_url, tmp_path)
        for i in range(50):
            process.send(answer(i), time.time(), answer(i).columns, wait=False)
        await asyncio.sleep(0)  # one loop turn: the lines are written to the pipe
        child = process._process
        assert child is not None and process._stdin is not None
        process._stdin.transport.abort()  # the pipe closes as a dead worker's would
        assert await asyncio.wait_for(child.wait(), WAIT_S) == 0
        await shut(process)

    run(main)
    assert logged(db_url) == sorted(answer(i).ids[0] for i in range(50))


def test_settings_never_reach_the_command_line(db_url: str, tmp_path: Path) -> None:
    async def main() -> None:
        process = await started(db_url, tmp_path)
        child = process._process
        assert child is not None
        command = Path(f"/proc/{child.pid}/cmdline").read_bytes()
        assert db_url.encode() not in command
        await shut(process)

    run(main)


def test_a_process_that_cannot_start_leaves_the_worker_writing_and_closes(
    db_url: str, tmp_path: Path
) -> None:
    async def main() -> None:
        process = log_process(db_url, tmp_path)
        process.settings = settings(db_url, tmp_path, "sometimes")  # type: ignore[arg-type]  # exits
        process.start()
        # wait_ready returns once the first start fails, not at its own (long) timeout
        assert not await asyncio.wait_for(process.wait_ready(10 * WAIT_S), WAIT_S)
        assert not process.accepting
        await asyncio.wait_for(shut(process), WAIT_S)

    run(main)


def test_lines_the_process_never_got_are_written_by_the_worker(db_url: str, tmp_path: Path) -> None:
    async def main() -> None:
        process = await started(db_url, tmp_path, "strict")
        batched = process.send(answer(1), time.time(), answer(1).columns, wait=False)
        strict = process.send(answer(2), time.time(), answer(2).columns, wait=True)
        assert batched is None and strict is not None
        assert process._stdin is not None
        process._stdin.transport.abort()  # the pipe breaks before this loop turn's write
        await asyncio.wait_for(strict, WAIT_S)  # acknowledged by the worker's own writer
        await shut(process)
        assert process.stats.failed == 0

    run(main)
    assert logged(db_url) == sorted([answer(1).ids[0], answer(2).ids[0]])
