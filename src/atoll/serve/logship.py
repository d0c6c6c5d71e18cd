"""The worker's end of its log process (:mod:`atoll.serve.logproc`).

A request costs the event loop one JSON line appended to a list; the lines
of one loop turn leave in one write to the process's stdin. The process
answers on its stdout: acknowledgements of waited-for (strict) records, and
its counts. When the process is not there (starting, restarting after a
crash) or cannot keep up (``max_buffer_bytes`` unsent), :attr:`LogProcess.accepting`
is False and the worker writes its records itself, through its in-process
writer, which bounds its memory and spills like the process does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from atoll.spec_serve import MIB
from atoll.store.predlog import LogStats

from .errors import ServeError
from .logframes import Answered, encode

log = logging.getLogger("atoll.serve")

MODULE = "atoll.serve.logproc"
RESTART_DELAYS_S = (1.0, 2.0, 5.0, 10.0, 30.0)
_NO_STATS = LogStats(written=0, spilled=0, replayed=0, pending=0, spilling=False)


class LogUnavailable(ServeError):
    """Strict durability could not be confirmed: the log process stopped. Not acknowledged."""

    status = 503
    code = "prediction_log_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": "1"})


@dataclass(frozen=True)
class ProcessSettings:
    """What the log process needs (sent as its first stdin line: the URL may hold a password)."""

    db_url: str
    spill_dir: str
    durability: str
    flush_interval_s: float
    queue_size: int


class LogProcess:
    """Starts, feeds and restarts one worker's log process."""

    def __init__(self, settings: ProcessSettings, *, max_buffer_bytes: int = 16 * MIB) -> None:
        self.settings = settings
        self.max_buffer_bytes = max_buffer_bytes
        self._stdin: asyncio.StreamWriter | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._lines: list[bytes] = []
        self._unsent = 0
        self._flush_soon = False
        self._seq = 0
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._stats = _NO_STATS  # the running process's last report
        self._before = _NO_STATS  # what processes before it did
        self._shipped = 0
        self._closing = False
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def accepting(self) -> bool:
        """Whether a record sent now goes to the process (else: the worker's own writer)."""
        stdin = self._stdin
        return stdin is not None and (
            stdin.transport.get_write_buffer_size() < self.max_buffer_bytes
        )

    @property
    def stats(self) -> LogStats:
        """Counts since start: every process so far, as each last reported them."""
        now, before = self._stats, self._before
        return LogStats(
            written=before.written + now.written,
            spilled=before.spilled + now.spilled,
            replayed=before.replayed + now.replayed,
            pending=now.pending + self._unsent,
            spilling=now.spilling,
            failed=before.failed + now.failed,
        )

    def start(self) -> None:
        """Start the process in the background; :meth:`wait_ready` waits for it."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._supervise())

    async def wait_ready(self, timeout_s: float) -> bool:
        """Whether the process came up within ``timeout_s`` (until then records stay in-process)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        return self._ready.is_set()

    def send(
        self,
        answered: Answered,
        answered_at: float,
        inputs: Mapping[str, Sequence[Any]],
        wait: bool,
    ) -> asyncio.Future[None] | None:
        """Ship one answer; with ``wait``, a future that resolves once its records are durable.

        Raises:
            ValueError: a value JSON cannot hold (nothing was shipped).
        """
        seq = self._seq + 1 if wait else 0
        line = encode(seq, answered, answered_at, inputs)
        self._lines.append(line)
        self._unsent += len(answered.ids)
        if not self._flush_soon:
            self._flush_soon = True
            asyncio.get_running_loop().call_soon(self._flush)
        if not wait:
            return None
        self._seq = seq
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[seq] = future
        return future

    async def close(self, timeout_s: float = 60.0) -> None:
        """Hand over the last lines, let the process write everything out, and wait for it."""
        self._closing = True
        self._flush()
        if self._stdin is not None:
            self._stdin.close()  # end of input: the process writes what it has, then exits
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
        except TimeoutError:
            log.error("the prediction log process did not finish within %.0f s", timeout_s)
            if self._process is not None and self._process.returncode is None:
                self._process.kill()
            await self._task

    def _flush(self) -> None:
        self._flush_soon = False
        if self._lines and self._stdin is not None:
            self._stdin.write(b"".join(self._lines))
            self._lines.clear()
            self._shipped += self._unsent
            self._unsent = 0

    async def _supervise(self) -> None:
        attempt = 0
        while not self._closing:
            try:
                await self._run_once()
            except Exception:
                log.exception("the prediction log process failed")
            self._lost()
            if self._closing:
                return
            delay = RESTART_DELAYS_S[min(attempt, len(RESTART_DELAYS_S) - 1)]
            attempt += 1
            log.error(
                "the prediction log process stopped; restarting it in %.0f s "
                "(until then this worker writes its log itself)",
                delay,
            )
            await asyncio.sleep(delay)

    async def _run_once(self) -> None:
        process = self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            MODULE,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C to the terminal's group is the worker's to handle
        )
        assert process.stdin is not None and process.stdout is not None
        settings = dict(self.settings.__dict__)
        process.stdin.write(orjson.dumps(settings) + b"\n")
        await self._read(process.stdout, process.stdin)
        code = await process.wait()
        if code != 0:
            log.error("the prediction log process exited with status %d", code)

    async def _read(self, stdout: asyncio.StreamReader, stdin: asyncio.StreamWriter) -> None:
        partial = b""
        while True:
            chunk = await stdout.read(1 << 16)
            if not chunk:
                return
            *lines, partial = (partial + chunk).split(b"\n")
            for line in lines:
                message = orjson.loads(line)
                if "done" in message:
                    self._resolve(message["done"], None)
                elif "failed" in message:
                    for seq, why in message["failed"]:
                        self._resolve([seq], ValueError(why))
                elif "stats" in message:
                    self._stats = LogStats(**message["stats"])
                elif message.get("ready"):
                    if self._closing:  # closed while it started: it has nothing to write
                        stdin.close()
                        continue
                    self._stdin = stdin
                    self._ready.set()
                    self._flush()

    def _resolve(self, seqs: list[int], error: BaseException | None) -> None:
        waiting = self._waiting
        for seq in seqs:
            future = waiting.pop(seq, None)
            if future is None or future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    def _lost(self) -> None:
        """The process is gone: nothing more goes to it; whoever waits learns it."""
        self._stdin = None
        self._ready.clear()
        stats = self._stats
        lost = self._shipped + self._unsent - stats.written - stats.spilled - stats.failed
        if lost > 0:
            log.error(
                "the prediction log process stopped; up to %d record(s) sent to it were not "
                "written",
                lost,
            )
        before = self._before
        self._before = LogStats(
            written=before.written + stats.written,
            spilled=before.spilled + stats.spilled,
            replayed=before.replayed + stats.replayed,
            pending=0,
            spilling=False,
            failed=before.failed + stats.failed + max(0, lost),
        )
        self._stats = _NO_STATS
        self._shipped = self._unsent = 0
        self._lines.clear()
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(
                    LogUnavailable("the prediction log stopped before this answer was logged")
                )
