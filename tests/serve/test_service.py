"""Waiting for a strict answer's log records: outcome, error, timeout (real event loops)."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from atoll.serve.errors import LogUnavailable
from atoll.serve.service import confirmed


def run_collecting_loop_errors(main: Any) -> list[dict[str, Any]]:
    """Run ``main()``; what the loop's exception handler was given (never-retrieved errors)."""
    reported: list[dict[str, Any]] = []

    async def wrapper() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: reported.append(ctx))
        await main()
        gc.collect()  # an unretrieved exception is reported when its future is collected
        await asyncio.sleep(0)

    asyncio.run(wrapper())
    return reported


def test_confirmed_returns_once_the_records_are_durable() -> None:
    async def main() -> None:
        durable = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.01, durable.set_result, None)
        await confirmed(durable, timeout=5)

    assert run_collecting_loop_errors(main) == []


def test_confirmed_raises_the_logs_error() -> None:
    async def main() -> None:
        durable = asyncio.get_running_loop().create_future()
        durable.set_exception(ValueError("refused by the table"))
        with pytest.raises(ValueError, match="refused by the table"):
            await confirmed(durable, timeout=5)

    assert run_collecting_loop_errors(main) == []


def test_a_log_that_does_not_confirm_in_time_is_a_503_and_its_late_error_is_read() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        durable = loop.create_future()
        started = loop.time()
        with pytest.raises(LogUnavailable, match=r"did not confirm within 0\.05 s"):
            await confirmed(durable, timeout=0.05)
        assert loop.time() - started >= 0.05
        durable.set_exception(ValueError("too late"))  # nobody waits: read, not reported
        await asyncio.sleep(0)
        del durable

    assert run_collecting_loop_errors(main) == []
