"""The log process: one serving worker's prediction-log writer, in a process of its own.

Building a record's JSON and inserting it cost about as much CPU as the rest
of a one-row request; in the worker that ran under the GIL its event loop
needs. Here it runs beside the worker, on another core. Each worker starts one
(``python -m atoll.serve.logproc``, see :mod:`atoll.serve.logship`) and talks
to it over pipes:

- stdin, from the worker: its settings as the first line (never on the
  command line: the database URL may hold a password), then one line per
  answered request (:mod:`atoll.serve.logframes`);
- stdout, to the worker: ``{"ready": true}`` once the writer runs, then
  ``{"done": [seq, ...]}`` and ``{"failed": [[seq, why], ...]}`` as waited-for
  records become durable or are refused, and ``{"stats": {...}}`` when the
  counts change.

The end of stdin (the worker closed it, or died, even by ``kill -9``) means:
write out everything queued, then exit. Signals are the worker's to handle;
this process ignores SIGINT and SIGTERM so that a Ctrl-C or a SIGTERM to the
process group cannot stop it before the worker has handed it its last lines.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import sys
import threading
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import IO, Any

import orjson

from atoll.store.db import create_engine_for
from atoll.store.predlog import PredictionLog

from .logframes import ProcessSettings, frame_seq, parse
from .memory import settle_memory

log = logging.getLogger("atoll.predlog")

STATS_INTERVAL_S = 0.2


class Outbox:
    """Writes the process's answers to the worker from one thread, a line per kind per wake-up.

    Acknowledgements come from the writer thread as batches commit; collecting
    them here makes one line per group commit, not one per request. Lines are
    written outside the lock, so a worker slow to read never holds up the
    writer thread's acknowledgements.
    """

    def __init__(self, stream: IO[bytes], log_writer: PredictionLog) -> None:
        self._stream = stream
        self._log = log_writer
        self._cond = threading.Condition()
        self._done: list[int] = []
        self._failed: list[tuple[int, str]] = []
        self._messages: list[dict[str, Any]] = []
        self._closed = False
        self._last_stats: dict[str, Any] | None = None
        self._thread = threading.Thread(target=self._run, name="atoll-logproc-out", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def ack(self, seq: int, future: Future[None]) -> None:
        """A done-callback of a waited-for frame's future (called on the writer thread)."""
        error = future.exception()
        with self._cond:
            if error is None:
                self._done.append(seq)
            else:
                self._failed.append((seq, str(error)))
            self._cond.notify()

    def fail(self, seq: int, why: str) -> None:
        """A waited-for frame that was never queued (the worker learns it was not logged)."""
        with self._cond:
            self._failed.append((seq, why))
            self._cond.notify()

    def send(self, message: dict[str, Any]) -> None:
        with self._cond:
            self._messages.append(message)
            self._cond.notify()

    def close(self) -> None:
        """Send what is left and the final counts, then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not (self._done or self._failed or self._messages or self._closed):
                    self._cond.wait(STATS_INTERVAL_S)
                messages, self._messages = self._messages, []
                if self._done:
                    messages.append({"done": self._done})
                    self._done = []
                if self._failed:
                    messages.append({"failed": self._failed})
                    self._failed = []
                closed = self._closed
            stats = dataclasses.asdict(self._log.stats)
            if stats != self._last_stats:
                self._last_stats = stats
                messages.append({"stats": stats})
            self._write(messages)
            if closed:
                return

    def _write(self, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        try:
            self._stream.write(b"".join(orjson.dumps(m) + b"\n" for m in messages))
            self._stream.flush()
        except (BrokenPipeError, ValueError):  # the worker is gone: keep writing the log
            pass


def run(lines: IO[bytes], out: IO[bytes]) -> int:
    """Serve one worker: settings from the first line of ``lines``, then its frames."""
    settings = ProcessSettings(**orjson.loads(lines.readline()))
    engine = create_engine_for(settings.db_url)
    writer = PredictionLog(
        engine,
        Path(settings.spill_dir),
        durability=settings.durability,
        flush_interval_s=settings.flush_interval_s,
        queue_size=settings.queue_size,
        shares_gil=False,
    )
    writer.start()
    settle_memory()
    outbox = Outbox(out, writer)
    outbox.start()
    outbox.send({"ready": True})
    try:
        for number, line in enumerate(lines, start=1):
            _take(writer, outbox, line, number)
    finally:
        writer.close()
        outbox.close()
        engine.dispose()
    return 0


def _take(writer: PredictionLog, outbox: Outbox, line: bytes, number: int) -> None:
    try:
        if not line.endswith(b"\n"):
            raise ValueError("the worker stopped in the middle of it")
        frame = parse(line)
    except ValueError as error:
        log.error("prediction log line %d from the worker was not written: %s", number, error)
        seq = frame_seq(line)
        if seq:
            outbox.fail(seq, str(error))
        return
    if frame.seq:
        future = writer.submit_later(frame.count, frame.build)
        future.add_done_callback(partial(outbox.ack, frame.seq))
    else:
        writer.queue_later(frame.count, frame.build)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    return run(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(main())
