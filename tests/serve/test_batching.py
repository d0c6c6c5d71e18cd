"""The micro-batcher: its queue rules without a clock, then the asyncio driver for real."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest

from atoll.serve.batching import (
    INLINE_BUDGET_S,
    Batcher,
    BatchQueue,
    Columns,
    Pending,
    merge,
)
from atoll.serve.errors import Overloaded


def pending(
    loop: asyncio.AbstractEventLoop, arrived: float, rows: int = 1, cols: str = "ab"
) -> Any:
    columns = {c: [f"{c}{arrived}-{i}" for i in range(rows)] for c in cols}
    return Pending(columns, rows, loop.create_future(), arrived)


@pytest.fixture
def loop() -> Any:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_the_deadline_is_fixed_at_the_first_arrival(loop: asyncio.AbstractEventLoop) -> None:
    queue: BatchQueue[Any] = BatchQueue(max_rows=10, max_wait_s=0.005, max_requests=100)
    assert queue.due_at() is None
    queue.add(pending(loop, 1.000))
    queue.add(pending(loop, 1.004))
    assert queue.due_at() == pytest.approx(1.005)
    assert not queue.is_due(1.0049)
    assert queue.is_due(1.005)


def test_a_full_batch_is_due_at_once(loop: asyncio.AbstractEventLoop) -> None:
    queue: BatchQueue[Any] = BatchQueue(max_rows=4, max_wait_s=10.0, max_requests=100)
    queue.add(pending(loop, 1.0, rows=2))
    assert not queue.is_due(1.0)
    queue.add(pending(loop, 1.0, rows=2))
    assert queue.is_due(1.0)


def test_requests_are_never_split_and_a_big_one_goes_alone(
    loop: asyncio.AbstractEventLoop,
) -> None:
    queue: BatchQueue[Any] = BatchQueue(max_rows=4, max_wait_s=0.0, max_requests=100)
    big, small = pending(loop, 1.0, rows=9), pending(loop, 1.1, rows=1)
    queue.add(big)
    queue.add(small)
    assert queue.take() == [big]
    assert queue.take() == [small]
    assert queue.take() == []


def test_only_requests_with_the_same_columns_are_stacked(loop: asyncio.AbstractEventLoop) -> None:
    queue: BatchQueue[Any] = BatchQueue(max_rows=100, max_wait_s=0.0, max_requests=100)
    first, other, third = pending(loop, 1.0), pending(loop, 1.1, cols="abc"), pending(loop, 1.2)
    for item in (first, other, third):
        queue.add(item)
    assert queue.take() == [first, third]
    assert queue.take() == [other]


def test_a_full_queue_refuses_with_overloaded(loop: asyncio.AbstractEventLoop) -> None:
    queue: BatchQueue[Any] = BatchQueue(max_rows=10, max_wait_s=0.0, max_requests=2)
    queue.add(pending(loop, 1.0))
    queue.add(pending(loop, 1.0))
    with pytest.raises(Overloaded):
        queue.add(pending(loop, 1.0))


def test_merge_keeps_arrival_order(loop: asyncio.AbstractEventLoop) -> None:
    batch = [pending(loop, 1.0, rows=2), pending(loop, 2.0, rows=1)]
    assert merge(batch) == {
        "a": ["a1.0-0", "a1.0-1", "a2.0-0"],
        "b": ["b1.0-0", "b1.0-1", "b2.0-0"],
    }


def echo_runner(calls: list[list[int]]) -> Any:
    """A batch function that answers each request with its own rows, and records batches."""
    lock = threading.Lock()

    def run(columns: Columns, counts: list[int]) -> list[Any]:
        with lock:
            calls.append(counts)
        out, start = [], 0
        for count in counts:
            out.append(columns["a"][start : start + count])
            start += count
        return out

    return run


def test_concurrent_requests_share_batches_and_get_their_own_rows() -> None:
    calls: list[list[int]] = []

    async def main() -> list[Any]:
        batcher = Batcher(echo_runner(calls), max_rows=64, max_wait_s=0.05, max_requests=100)
        batcher.start()
        results = await asyncio.gather(
            *(batcher.enqueue({"a": [i, i + 1000]}, 2) for i in range(20))
        )
        await batcher.close()
        return results

    results = asyncio.run(main())
    assert results == [[i, i + 1000] for i in range(20)]
    assert sum(len(c) for c in calls) == 20
    assert len(calls) < 20  # some requests were stacked


def test_disabled_batching_runs_one_request_per_call() -> None:
    calls: list[list[int]] = []

    async def main() -> list[Any]:
        batcher = Batcher(
            echo_runner(calls), max_rows=64, max_wait_s=0.05, max_requests=100, enabled=False
        )
        batcher.start()
        results = await asyncio.gather(*(batcher.enqueue({"a": [i]}, 1) for i in range(5)))
        await batcher.close()
        return results

    assert asyncio.run(main()) == [[i] for i in range(5)]
    assert calls == [[1]] * 5


def test_an_error_for_one_request_reaches_only_that_request() -> None:
    def run(columns: Columns, counts: list[int]) -> list[Any]:
        return [ValueError("bad") if v == "bad" else v for v in columns["a"]]

    async def main() -> list[Any]:
        batcher = Batcher(run, max_rows=64, max_wait_s=0.05, max_requests=100)
        batcher.start()
        out = await asyncio.gather(
            *(batcher.enqueue({"a": [v]}, 1) for v in ("ok", "bad", "ok")), return_exceptions=True
        )
        await batcher.close()
        return out

    first, second, third = asyncio.run(main())
    assert (first, third) == ("ok", "ok")
    assert isinstance(second, ValueError)


def test_close_waits_for_the_batch_being_computed() -> None:
    started, release = threading.Event(), threading.Event()

    def slow(columns: Columns, counts: list[int]) -> list[Any]:
        started.set()
        release.wait(10)
        return ["done"] * len(counts)

    async def main() -> Any:
        batcher = Batcher(slow, max_rows=64, max_wait_s=0.0, max_requests=100)
        batcher.start()
        request = asyncio.ensure_future(batcher.enqueue({"a": [1]}, 1))
        await asyncio.to_thread(started.wait, 10)
        closing = asyncio.ensure_future(batcher.close())
        await asyncio.sleep(0.05)
        assert not closing.done()
        release.set()
        await closing
        return await request

    assert asyncio.run(main()) == "done"


def test_small_batches_are_predicted_on_the_loop_thread_large_ones_on_the_model_thread() -> None:
    """Up to ``inline_max_rows`` the loop predicts itself; its numeric limits are set first."""
    ran_on: list[tuple[int, int]] = []  # (rows, thread)
    initialized: list[int] = []

    def run(columns: Columns, counts: list[int]) -> list[Any]:
        assert threading.get_ident() in initialized  # limits set before this thread's first batch
        ran_on.append((sum(counts), threading.get_ident()))
        return ["ok"] * len(counts)

    async def main() -> tuple[list[Any], int]:
        batcher = Batcher(
            run,
            max_rows=1_000,
            max_wait_s=0.0,
            max_requests=100,
            thread_init=lambda: initialized.append(threading.get_ident()),
            inline_max_rows=8,
        )
        batcher.start()
        answers = [await batcher.enqueue({"a": [0] * rows}, rows) for rows in (1, 8, 9, 500, 2)]
        await batcher.close()
        return answers, threading.get_ident()

    answers, loop_thread = asyncio.run(main())
    assert answers == ["ok"] * 5
    on_loop = [rows for rows, thread in ran_on if thread == loop_thread]
    assert on_loop == [1, 8, 2]
    assert [rows for rows, thread in ran_on if thread != loop_thread] == [9, 500]
    assert initialized.count(loop_thread) == 1 and len(initialized) == 2


def test_an_inline_runner_that_raises_fails_every_request_of_its_batch() -> None:
    def broken(columns: Columns, counts: list[int]) -> list[Any]:
        raise RuntimeError("the model broke")

    async def main() -> list[Any]:
        batcher = Batcher(
            broken, max_rows=64, max_wait_s=0.01, max_requests=100, inline_max_rows=64
        )
        batcher.start()
        out = await asyncio.gather(
            *(batcher.enqueue({"a": [i]}, 1) for i in range(3)), return_exceptions=True
        )
        await batcher.close()
        return out

    assert [str(error) for error in asyncio.run(main())] == ["the model broke"] * 3


def test_a_model_too_slow_for_the_loop_goes_to_its_thread_from_then_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran_on: list[int] = []

    def run(columns: Columns, counts: list[int]) -> list[Any]:
        if not ran_on:  # the first batch holds the loop past the budget, in CPU time
            spin_until = time.thread_time() + INLINE_BUDGET_S * 2
            while time.thread_time() < spin_until:
                pass
        ran_on.append(threading.get_ident())
        return ["ok"] * len(counts)

    async def main() -> int:
        batcher = Batcher(
            run, max_rows=64, max_wait_s=0.0, max_requests=100, inline_max_rows=64, thread_name="m"
        )
        batcher.start()
        for _ in range(3):
            assert await batcher.enqueue({"a": [1]}, 1) == "ok"
        await batcher.close()
        return threading.get_ident()

    with caplog.at_level(logging.WARNING, logger="atoll.serve"):
        loop_thread = asyncio.run(main())
    first, *later = ran_on
    assert first == loop_thread
    assert later and all(thread != loop_thread for thread in later)
    assert "m: a batch of 1 rows took" in caplog.text and "own thread" in caplog.text
