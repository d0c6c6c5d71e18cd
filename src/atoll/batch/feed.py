"""Feeding the prediction log from a batch job: each chunk's rows, in one transaction.

The job writes a chunk's rows to the log before it writes the chunk's part,
so a crash between the two leaves the chunk to be scored again on resume,
and the log ignores the ids it already holds (:mod:`~atoll.batch.logged`):
every row of a finished job is in the log once. Rows are written here, in
the parent process, synchronously and a few thousand per insert, not through
the server's queue, which would spill a 100,000-row chunk to disk: memory
stays bounded by the chunk. Rows look as the server logs them: role
``batch``, the validated inputs with PII columns hashed or dropped by the
same rule, and the outputs of ``Prediction.to_records()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from atoll.model.outputs import output_records
from atoll.store.predlog import BATCH_ROLE, LogRequest, Row, write_now

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlalchemy.engine import Engine

    from atoll.batch.model import ModelHandle
    from atoll.batch.score import ChunkResult
    from atoll.store.redact import Redactor

INSERT_ROWS = 5_000
"""Rows per insert: a chunk's records are never all in memory at once."""
PROBABILITY = "probability_"


@dataclass(frozen=True)
class LogTarget:
    """Where and how a job logs: the store's engine, the PII rule, the share of rows logged."""

    engine: Engine
    redactor: Redactor
    sample: float = 1.0


class LogFeed:
    """Writes the logged rows of each scored chunk of one job to the prediction log."""

    def __init__(self, target: LogTarget, handle: ModelHandle, request_id: str) -> None:
        self.target = target
        self.schema = handle.schema()
        self.model, self.version = handle.name, handle.version
        self.request_id = request_id

    def write(self, result: ChunkResult) -> int:
        """Log the chunk's sampled rows (ids already in the log are ignored); returns how many."""
        logged = result.logged
        if logged is None or len(logged.positions) == 0:
            return 0
        request = LogRequest(
            request_id=self.request_id,
            created_at=datetime.now(UTC),
            model=self.model,
            version=self.version,
            role=BATCH_ROLE,
            latency_ms=logged.seconds * 1000 / max(1, result.rows_in),
            key_id=None,
        )
        outputs = result.output.take(logged.positions)
        rows = outputs.num_rows

        def batches() -> Iterator[list[Row]]:
            for start in range(0, rows, INSERT_ROWS):
                inputs = logged.inputs.slice(start, INSERT_ROWS)
                yield self._rows(request, inputs, outputs.slice(start, INSERT_ROWS))

        return write_now(self.target.engine, batches)

    def _rows(self, request: LogRequest, inputs: pa.Table, outputs: pa.Table) -> list[Row]:
        columns = {name: inputs.column(name).to_pylist() for name in inputs.column_names}
        redacted = self.target.redactor.columns(self.schema, columns)
        ids = outputs.column("prediction_id").to_pylist()
        return request.rows(ids, redacted, table_records(outputs))


def table_records(outputs: pa.Table) -> list[dict[str, Any]]:
    """The output rows as ``Prediction.to_records()`` gives them: what the server logs."""
    labels = outputs.column("prediction").to_pylist()
    names = [name for name in outputs.column_names if name.startswith(PROBABILITY)]
    if not names:
        return output_records(labels, None, [])
    classes = [name.removeprefix(PROBABILITY) for name in names]
    columns = [outputs.column(name).to_pylist() for name in names]
    return output_records(labels, zip(*columns, strict=True), classes)
