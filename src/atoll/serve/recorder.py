"""Turns answered requests into prediction-log records: ids, PII redaction, sampling.

Each row gets a prediction id that feedback can name later. Ids are a random
per-request prefix plus the row number, so a 1,000-row request costs one
random draw, not a thousand. PII columns (``pii: true`` in the schema) never
reach the log in clear: :class:`~atoll.store.redact.Redactor` hashes or drops
them, as it does for batch scoring.
"""

from __future__ import annotations

import asyncio
import random
import time
from functools import partial

from atoll.spec_serve import LogSpec
from atoll.store.predlog import LogStats, PredictionLog, Row
from atoll.store.redact import Redactor

from .logframes import Answered
from .logship import LogProcess

__all__ = ["Answered", "Recorder"]


class Recorder:
    """Hands one server's answers to a log writer, which builds their records.

    A request only hands its answer over: the records (ids, redaction aside,
    JSON text) are built by the writer just before they are inserted, in the
    batch they are committed with. With a log process (``monitor.log.writer:
    process``, the default) that is another process, so the work leaves this
    worker's GIL; the in-process writer takes the answers whenever the
    process is not there or cannot keep up.
    """

    def __init__(
        self,
        log: PredictionLog | None,
        spec: LogSpec,
        pepper: str | None,
        process: LogProcess | None = None,
    ) -> None:
        self._log = log if spec.enabled else None
        self._process = process if self._log is not None else None
        self._spec = spec
        self._redactor = Redactor(spec.pii, pepper)

    @property
    def strict(self) -> bool:
        return self._log is not None and self._spec.durability == "strict"

    @property
    def stats(self) -> LogStats | None:
        """Both writers' counts together (None when the log is off)."""
        if self._log is None:
            return None
        here = self._log.stats
        return here if self._process is None else here + self._process.stats

    def sampled(self) -> bool:
        """Whether this request is logged (the spec's ``sample`` share of requests)."""
        if self._log is None:
            return False
        rate = self._spec.sample
        return rate >= 1.0 or random.random() < rate

    def record(self, answered: Answered, *, wait: bool = True) -> asyncio.Future[None] | None:
        """Queue one record per row; returns, with strict durability, their future.

        The future resolves once the records are durable. A batched server never
        waits for its records, so it gets None and no future is made; nor does
        a caller that says it will not ``wait`` (a shadow's answers).
        """
        log = self._log
        if log is None:
            return None
        answered_at = time.time()
        strict = wait and self.strict
        process = self._process
        if process is not None and process.accepting:
            inputs = self._redactor.columns(answered.schema, answered.columns)
            return process.send(answered, answered_at, inputs, strict)
        build = partial(self._rows, answered, answered_at)
        if strict:
            return asyncio.wrap_future(log.submit_later(len(answered.ids), build))
        log.queue_later(len(answered.ids), build)
        return None

    async def start(self, timeout_s: float = 60.0) -> None:
        """Start the log process, if any; records stay in-process until it is up."""
        if self._process is not None:
            self._process.start()
            await self._process.wait_ready(timeout_s)

    async def close(self) -> None:
        """Let the log process write out everything, then the in-process writer."""
        if self._process is not None:
            await self._process.close()
        if self._log is not None:
            await asyncio.to_thread(self._log.close)

    def _rows(self, answered: Answered, answered_at: float) -> list[Row]:
        inputs = self._redactor.columns(answered.schema, answered.columns)
        return answered.log_rows(answered_at, inputs)
