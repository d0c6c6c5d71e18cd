"""The worker's end of its log process (:mod:`atoll.serve.logproc`).

A request costs the event loop one answer appended to a list. At the end of
the loop turn the answers are encoded as JSON lines and leave in one write
to the process's stdin: after the responses of that turn were sent, so a
large answer is not held up by its log line (~2 ms for 1,000 rows here). The process
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
from dataclasses import asdict, dataclass, replace
from functools import partial
from typing import Any

import orjson

from atoll.spec_serve import MIB
from atoll.store.predlog import LogStats, PredictionLog, Row

from .errors import LogUnavailable
from .logframes import Answered, ProcessSettings, encode

log = logging.getLogger("atoll.serve")

MODULE = "atoll.serve.logproc"
RESTART_DELAYS_S = (1.0, 2.0, 5.0, 10.0, 30.0)
EXIT_WAIT_S = 60.0
"""How long a process whose output ended (or could not be read) gets to write out and exit."""
_NO_STATS = LogStats(written=0, spilled=0, replayed=0, pending=0, spilling=False)


@dataclass(slots=True)  # made per request: frozen costs ~0.6 µs more; never mutated
class _Unsent:
    """An answer on its way to the process (``seq`` 0: nobody waits for it)."""

    seq: int
    answered: Answered
    answered_at: float
    inputs: Mapping[str, Sequence[Any]]

    @property
    def count(self) -> int:
        return len(self.answered.ids)

    def build(self) -> list[Row]:
        return self.answered.log_rows(self.answered_at, self.inputs)


class LogProcess:
    """Starts, feeds and restarts one worker's log process."""

    def __init__(
        self,
        settings: ProcessSettings,
        fallback: PredictionLog,
        *,
        max_buffer_bytes: int = 16 * MIB,
    ) -> None:
        self.settings = settings
        self.fallback = fallback
        self.max_buffer_bytes = max_buffer_bytes
        self._stdin: asyncio.StreamWriter | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._unsent: list[_Unsent] = []
        self._flush_soon = False
        self._seq = 0
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._stats = _NO_STATS  # the running process's last report
        self._before = _NO_STATS  # what processes before it did
        self._shipped = 0
        self._ready = asyncio.Event()
        self._settled = asyncio.Event()  # the first start came up, or failed
        self._closed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def accepting(self) -> bool:
        """Whether a record sent now goes to the process (else: the worker's own writer)."""
        stdin = self._stdin
        if stdin is None or stdin.transport.is_closing():
            return False
        return stdin.transport.get_write_buffer_size() < self.max_buffer_bytes

    @property
    def stats(self) -> LogStats:
        """Counts since start: every process so far, as each last reported them."""
        total = self._before + self._stats
        return replace(total, pending=total.pending + sum(u.count for u in self._unsent))

    def start(self) -> None:
        """Start the process in the background; :meth:`wait_ready` waits for it."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._supervise())

    async def wait_ready(self, timeout_s: float) -> bool:
        """Whether the process came up (waits at most ``timeout_s``, less if it fails at once).

        Until it is up, records stay in-process.
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled.wait(), timeout_s)
        return self._ready.is_set()

    def send(
        self,
        answered: Answered,
        answered_at: float,
        inputs: Mapping[str, Sequence[Any]],
        wait: bool,
    ) -> asyncio.Future[None] | None:
        """Ship one answer; with ``wait``, a future that resolves once its records are durable.

        ``inputs`` are its columns, already redacted. An answer JSON cannot hold
        goes to the worker's own writer, which refuses it, logged and counted.
        """
        seq = self._seq + 1 if wait else 0
        self._unsent.append(_Unsent(seq, answered, answered_at, inputs))
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
        self._closed.set()  # a restart that waits gives up
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
        stdin = self._stdin
        if not self._unsent or stdin is None or stdin.transport.is_closing():
            return  # kept: the next process, or the worker's own writer, takes them
        lines, encoded = [], []
        for unsent in self._unsent:
            try:
                lines.append(encode(unsent.seq, unsent.answered, unsent.answered_at, unsent.inputs))
            except Exception:  # a value JSON cannot hold (ValueError), or a bug: this answer's
                self._write_here(unsent)
            else:
                encoded.append(unsent)
        self._unsent = encoded
        try:
            stdin.write(b"".join(lines))
        except (RuntimeError, OSError):  # the pipe closed under us: the process is going
            return
        self._unsent = []
        self._shipped += sum(u.count for u in encoded)

    async def _supervise(self) -> None:
        attempt = 0
        while not self._closed.is_set():
            try:
                await self._run_once()
            except Exception:
                log.exception("the prediction log process failed")
            if self._ready.is_set():  # it ran: a later crash starts the delays over
                attempt = 0
            self._lost()
            if self._closed.is_set():
                return
            delay = RESTART_DELAYS_S[min(attempt, len(RESTART_DELAYS_S) - 1)]
            attempt += 1
            log.error(
                "the prediction log process stopped; restarting it in %.0f s "
                "(until then this worker writes its log itself)",
                delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), delay)

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
        process.stdin.write(orjson.dumps(asdict(self.settings)) + b"\n")
        try:
            await self._read(process.stdout, process.stdin)
        finally:
            self._stdin = None  # its output ended: nothing more goes to it
            process.stdin.close()
            try:
                code = await asyncio.wait_for(process.wait(), EXIT_WAIT_S)
            except TimeoutError:
                log.error("the prediction log process did not exit; killing it")
                process.kill()
                code = await process.wait()
        if code != 0:
            log.error("the prediction log process exited with status %d", code)

    async def _read(self, stdout: asyncio.StreamReader, stdin: asyncio.StreamWriter) -> None:
        rest = b""
        while True:
            chunk = await stdout.read(1 << 16)
            if not chunk:
                return
            *lines, rest = (rest + chunk).split(b"\n")
            for line in lines:
                try:
                    message = orjson.loads(line)
                except orjson.JSONDecodeError:
                    log.error("the prediction log process wrote %r", line[:200])
                    continue
                if "done" in message:
                    self._resolve(message["done"], None)
                elif "failed" in message:
                    for seq, why in message["failed"]:
                        self._resolve([seq], ValueError(why))
                elif "stats" in message:
                    self._stats = LogStats(**message["stats"])
                elif message.get("ready"):
                    if self._closed.is_set():  # closed while it started: it has nothing to write
                        stdin.close()
                        continue
                    self._stdin = stdin
                    self._ready.set()
                    self._settled.set()
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
        self._settled.set()
        stats = self._stats
        lost = self._shipped - stats.written - stats.spilled - stats.failed
        if lost > 0:
            log.error(
                "the prediction log process stopped; up to %d record(s) sent to it were not "
                "written",
                lost,
            )
        total = self._before + stats
        self._before = replace(total, pending=0, spilling=False, failed=total.failed + max(0, lost))
        self._stats = _NO_STATS
        self._shipped = 0
        for unsent in self._unsent:  # never sent: the worker writes them itself
            self._write_here(unsent)
        self._unsent.clear()
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(
                    LogUnavailable("the prediction log stopped before this answer was logged")
                )

    def _write_here(self, unsent: _Unsent) -> None:
        """Hand an answer to the worker's own writer (whoever waits for it, waits on that)."""
        future = self._waiting.pop(unsent.seq, None) if unsent.seq else None
        if future is None:
            self.fallback.queue_later(unsent.count, unsent.build)
            return
        durable = asyncio.wrap_future(self.fallback.submit_later(unsent.count, unsent.build))
        durable.add_done_callback(partial(_follow, future))


def _follow(target: asyncio.Future[None], source: asyncio.Future[None]) -> None:
    """Give ``target`` the outcome of ``source`` (unless someone gave up on it already)."""
    if target.done():
        return
    error = source.exception()
    if error is None:
        target.set_result(None)
    else:
        target.set_exception(error)
