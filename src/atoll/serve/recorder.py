"""Turns answered requests into prediction-log records: ids, PII redaction, sampling.

Each row gets a prediction id that feedback can name later. Ids are a random
per-request prefix plus the row number, so a 1,000-row request costs one
random draw, not a thousand. PII columns (``pii: true`` in the schema) never
reach the log in clear: :class:`~atoll.store.redact.Redactor` hashes or drops
them, as it does for batch scoring.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from atoll.model.predictor import Prediction
from atoll.schema import Schema
from atoll.spec_serve import LogSpec
from atoll.store.predlog import LogRequest, PredictionLog, Row
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
    """Hands one server's answers to the log writer, which builds their records.

    A request only appends its answer to the writer's queue: the records (ids,
    redaction, JSON text) are built on the writer's thread just before they
    are inserted, in the batch they are committed with. Building them on the
    event loop would hold every other request while a 1,000-row answer is
    encoded; handing each one to a thread of its own woke that thread once per
    request, which cost more than building a one-row record.
    """

    def __init__(self, log: PredictionLog | None, spec: LogSpec, pepper: str | None) -> None:
        self._log = log if spec.enabled else None
        self._spec = spec
        self._redactor = Redactor(spec.pii, pepper)

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
        """Queue one record per row; returns, with strict durability, their future.

        The future resolves once the records are durable. A batched server never
        waits for its records, so it gets None and no future is made.
        """
        log = self._log
        if log is None:
            return None
        build = partial(self._rows, answered, time.time())
        if self.strict:
            return log.submit_later(len(answered.ids), build)
        log.queue_later(len(answered.ids), build)
        return None

    def _rows(self, answered: Answered, answered_at: float) -> list[Row]:
        inputs = self._redactor.columns(answered.schema, answered.columns)
        request = LogRequest(
            request_id=answered.request_id,
            created_at=datetime.fromtimestamp(answered_at, UTC),
            model=answered.model,
            version=answered.version,
            role=answered.role,
            latency_ms=answered.latency_ms,
            key_id=answered.key_id,
        )
        return request.rows(answered.ids, inputs, answered.prediction.to_records())
