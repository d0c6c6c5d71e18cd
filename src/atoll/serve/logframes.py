"""What a worker tells its log process: one answered request per line.

A line is one JSON array, ended by a newline (orjson never writes a raw newline
inside one, so framing is a split on newlines)::

    [seq, model, version, role, request_id, answered_at, latency_ms, key_id,
     ids, inputs, labels, probabilities, classes]

``seq`` is 0 when nobody waits for the records (batched durability), else the
number the log process acknowledges once they are durable. ``inputs`` are
redacted before the line is written, so PII never leaves the worker in clear.
Values go through the prediction log's own JSON encoder, and the log process
builds its rows with the same code as the in-process writer: a record reads
the same whichever of the two wrote it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from atoll.model.outputs import output_records
from atoll.store.predlog import Durability, LogRequest, Row, RowBuilder, json_bytes, python_values

if TYPE_CHECKING:
    from atoll.model.predictor import Prediction
    from atoll.schema import Schema

_FIELDS = 13
_SEQ = re.compile(rb"\[(\d+),")


@dataclass(frozen=True)
class ProcessSettings:
    """The log process's first line: where and how to write (the URL may hold a password)."""

    db_url: str
    spill_dir: str
    durability: Durability
    flush_interval_s: float
    queue_size: int


@dataclass(slots=True)  # made per request: frozen costs ~1.8 µs more; never mutated
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

    def log_rows(self, answered_at: float, inputs: Mapping[str, Sequence[Any]]) -> list[Row]:
        """The insert-ready rows, given the redacted ``inputs`` (the in-process writer's path)."""
        request = _request(
            self.request_id,
            answered_at,
            self.model,
            self.version,
            self.role,
            self.latency_ms,
            self.key_id,
        )
        return request.rows(self.ids, inputs, self.prediction.to_records())


@dataclass(frozen=True, slots=True)
class Frame:
    """A parsed line: its acknowledgement number, how many rows it holds, and their builder."""

    seq: int
    count: int
    build: RowBuilder


def encode(
    seq: int, answered: Answered, answered_at: float, inputs: Mapping[str, Sequence[Any]]
) -> bytes:
    """The line for one answer (``inputs``: its columns, already redacted).

    Raises:
        ValueError: a value JSON cannot hold (the in-process writer then refuses it, logged).
    """
    if np.ndarray in set(map(type, inputs.values())):  # Arrow bodies: numpy datetimes
        inputs = {name: python_values(values) for name, values in inputs.items()}
    prediction = answered.prediction
    probabilities = prediction.probabilities
    frame = (
        seq,
        answered.model,
        answered.version,
        answered.role,
        answered.request_id,
        answered_at,
        answered.latency_ms,
        answered.key_id,
        answered.ids,
        inputs,
        prediction.predictions.tolist(),  # what the in-process writer logs: to_records()
        None if probabilities is None else probabilities.tolist(),
        prediction.classes,
    )
    return json_bytes(frame, "answer") + b"\n"


def parse(line: bytes) -> Frame:
    """The frame of one line; its rows are built (and checked) when ``build`` is called.

    Raises:
        ValueError: the line is not a frame (torn by a crash, or not ours).
    """
    try:
        fields = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise ValueError(f"not a prediction log frame: {error}") from None
    if type(fields) is not list or len(fields) != _FIELDS:
        raise ValueError(f"not a prediction log frame: expected a list of {_FIELDS} fields")
    seq, model, version, role, request_id, answered_at, latency, key_id, ids, inputs = fields[:10]
    labels, probabilities, classes = fields[10:]
    if type(seq) is not int or type(ids) is not list or type(inputs) is not dict:
        raise ValueError("not a prediction log frame: bad seq, ids or inputs")

    def build() -> list[Row]:
        if type(answered_at) not in (int, float):
            raise ValueError(f"a log frame's time must be a number, not {answered_at!r}")
        request = _request(request_id, answered_at, model, version, role, latency, key_id)
        return request.rows(ids, inputs, output_records(labels, probabilities, classes))

    return Frame(seq, len(ids), build)


def frame_seq(line: bytes) -> int:
    """The acknowledgement number a line starts with, even if the rest is torn (0: none)."""
    match = _SEQ.match(line)
    return int(match.group(1)) if match else 0


def _request(
    request_id: str,
    answered_at: float,
    model: str,
    version: int,
    role: str,
    latency_ms: float,
    key_id: str | None,
) -> LogRequest:
    return LogRequest(
        request_id=request_id,
        created_at=datetime.fromtimestamp(answered_at, UTC),
        model=model,
        version=version,
        role=role,
        latency_ms=latency_ms,
        key_id=key_id,
    )
