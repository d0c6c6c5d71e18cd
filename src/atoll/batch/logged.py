"""Which rows a batch job logs and the prediction ids they carry: the same on every run.

A job that feeds the prediction log names each output row
``b<run: 15 hex><row: 20 digits>`` (36 characters, the log's limit). The
run id is drawn when a job starts afresh and kept in its work folder, so a
resumed job gives a re-scored row the id it had before and the log ignores
the second insert. With ``monitor.log.sample`` below 1, the rows logged are
picked by a hash of the run id and the row number: the same share, and the
same rows, on every run of the job. This is the worker's side; the parent
writes the rows (:mod:`~atoll.batch.feed`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

PREFIX = "b"
"""Batch ids start with a letter no server id starts with (they start with the time in hex)."""
RUN_CHARS = 15
ROW_DIGITS = 20


@dataclass(frozen=True)
class LogIds:
    """How one job names and samples the rows it logs.

    Attributes:
        run: the job's run id (hex; the first 15 characters are used).
        sample: the share of rows logged, from 0 to 1.
    """

    run: str
    sample: float = 1.0

    def ids(self, rows: np.ndarray) -> pa.Array:
        """The prediction ids of the rows numbered ``rows``."""
        import pyarrow as pa
        import pyarrow.compute as pc

        digits = pc.utf8_lpad(pc.cast(pa.array(rows, pa.int64()), pa.string()), ROW_DIGITS, "0")
        return pc.binary_join_element_wise(f"{PREFIX}{self.run[:RUN_CHARS]}", digits, "")

    def sampled(self, rows: np.ndarray) -> np.ndarray:
        """Which of the rows numbered ``rows`` are logged (a boolean mask)."""
        if self.sample >= 1.0:
            return np.ones(len(rows), dtype=bool)
        seed = np.uint64(int(self.run[:RUN_CHARS], 16))
        threshold = np.uint64(min(int(self.sample * 2.0**64), 2**64 - 1))
        return _mix(rows.astype(np.uint64) + seed) < threshold


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: near-uniform 64-bit values from consecutive integers."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    mixed: np.ndarray = z ^ (z >> np.uint64(31))
    return mixed


@dataclass(frozen=True, eq=False)
class ChunkLog:
    """What the parent needs to log one chunk's rows.

    Attributes:
        positions: the logged rows' positions in the chunk's output.
        inputs: their validated input columns (typed as validation read them).
        seconds: how long validating and predicting the chunk took.
    """

    positions: np.ndarray
    inputs: pa.Table
    seconds: float


def chunk_log(
    ids: LogIds, frame: pd.DataFrame, valid: np.ndarray, rows: np.ndarray, seconds: float
) -> ChunkLog:
    """The sampled valid rows of a validated chunk ``frame``; ``rows`` numbers its valid rows."""
    import pyarrow as pa

    positions = np.flatnonzero(ids.sampled(rows))
    chosen = np.flatnonzero(valid)[positions]
    inputs = pa.Table.from_pandas(frame.iloc[chosen], preserve_index=False)
    return ChunkLog(positions, inputs, seconds)
