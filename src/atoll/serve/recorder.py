"""Turns answered requests into prediction-log records: ids, PII redaction, sampling.

Each row gets a prediction id that feedback can name later. Ids are a random
per-request prefix plus the row number, so a 1,000-row request costs one
random draw, not a thousand. PII columns (``pii: true`` in the schema) never
reach the log in clear: :class:`~atoll.store.redact.Redactor` hashes or drops
them, as it does for batch scoring.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from atoll.model.predictor import Prediction
from atoll.schema import Schema
from atoll.spec_serve import LogSpec
from atoll.store.predlog import LogRequest, PredictionLog
from atoll.store.redact import Redactor


@dataclass(frozen=True)
class Answered:
    """One answered request, as the log needs it."""

    model: str
    version: int
    role: str
    schema: Schema
    columns: dict[str, list[Any]]
    prediction: Prediction
    ids: Sequence[str]
    request_id: str
    latency_ms: float
    key_id: str | None


class Recorder:
    """Builds log records for one server and hands them to the log writer."""

    def __init__(self, log: PredictionLog | None, spec: LogSpec, pepper: str | None) -> None:
        self._log = log if spec.enabled else None
        self._spec = spec
        self._redactor = Redactor(spec.pii, pepper)
        # Records are built and encoded off the event loop: a 1,000-row request
        # would otherwise hold every other request for the time it takes. The
        # thread drains whatever has accumulated since it last looked: waking a
        # thread costs more than building a one-row record, so under load it is
        # woken once per batch of requests, not once per request.
        self._prep = ThreadPoolExecutor(1, "atoll-log-prep")
        self._lock = threading.Lock()
        self._pending: list[tuple[Answered, Future[None]]] = []
        self._draining = False

    def close(self) -> None:
        """Hand every record still being built to the log (before the log closes)."""
        self._prep.shutdown(wait=True)

    @property
    def strict(self) -> bool:
        return self._log is not None and self._spec.durability == "strict"

    def sampled(self) -> bool:
        """Whether this request is logged (the spec's ``sample`` share of requests)."""
        if self._log is None:
            return False
        rate = self._spec.sample
        return rate >= 1.0 or random.random() < rate

    def record(self, answered: Answered) -> Future[None] | None:
        """Queue one record per row; the future resolves once they are durable."""
        log = self._log
        if log is None:
            return None
        durable: Future[None] = Future()
        with self._lock:
            self._pending.append((answered, durable))
            if self._draining:
                return durable
            self._draining = True
        self._prep.submit(self._drain, log)
        return durable

    def _drain(self, log: PredictionLog) -> None:
        """Build and submit every pending request's records, until none is left."""
        while True:
            with self._lock:
                batch, self._pending = self._pending, []
                if not batch:
                    self._draining = False
                    return
            for answered, durable in batch:
                try:
                    _chain(self._submit(log, answered), durable)
                except BaseException as error:  # a record the log refuses: the caller learns it
                    durable.set_exception(error)

    def _submit(self, log: PredictionLog, answered: Answered) -> Future[None]:
        inputs = self._redactor.columns(answered.schema, answered.columns)
        request = LogRequest(
            request_id=answered.request_id,
            created_at=datetime.now(UTC),
            model=answered.model,
            version=answered.version,
            role=answered.role,
            latency_ms=answered.latency_ms,
            key_id=answered.key_id,
        )
        return log.submit_request(request, answered.ids, inputs, answered.prediction.to_records())


def _chain(source: Future[None], target: Future[None]) -> None:
    def copy(done: Future[None]) -> None:
        error = done.exception()
        if error is None:
            target.set_result(None)
        else:
            target.set_exception(error)

    source.add_done_callback(copy)
