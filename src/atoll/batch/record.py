"""A batch job's row in the store: started, counts about once a second, outcome.

A store that stays locked for a while must not stop a job that is scoring
fine: progress it cannot write is logged and written at the end instead.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from atoll.errors import AtollError, StoreUnavailableError

if TYPE_CHECKING:
    from atoll.store.jobs import JobStore

log = logging.getLogger("atoll.batch")

STORE_EVERY_S = 1.0
"""Counts reach the record at most this often: a chunk can take milliseconds."""


@dataclass(frozen=True)
class Counts:
    """A job's totals so far; ``rows_logged`` is None when the job does not feed the log."""

    rows_scored: int
    rows_quarantined: int
    chunks_done: int
    rows_logged: int | None = None


class JobRecord:
    """Writes one job's record through a :class:`JobStore` (nothing when there is none)."""

    def __init__(self, jobs: JobStore | None) -> None:
        self.jobs = jobs
        self.job_id: str | None = None
        self._last = 0.0

    def start(self, **fields: Any) -> None:
        """Record the job as running (``fields`` as :meth:`JobStore.start` takes them)."""
        if self.jobs is not None:
            self.job_id = self.jobs.start(**fields).job_id

    def progress(self, counts: Counts, chunks_total: int | None) -> None:
        now = time.monotonic()
        if self.jobs is None or self.job_id is None or now - self._last < STORE_EVERY_S:
            return
        self._last = now
        try:
            self.jobs.progress(self.job_id, chunks_total=chunks_total, **asdict(counts))
        except StoreUnavailableError as exc:  # the job goes on; the record catches up at the end
            log.warning("could not record the progress of batch job %s: %s", self.job_id, exc)

    def succeeded(self, counts: Counts, chunks_total: int) -> None:
        """Record success; the output is already published, so a store error only warns."""
        try:
            self._finish("succeeded", counts, chunks_total, None)
        except AtollError as problem:
            log.warning(
                "batch job %s succeeded but its record could not say so (it shows running): %s",
                self.job_id,
                problem,
            )

    def failed(self, counts: Counts, chunks_total: int | None, exc: BaseException) -> None:
        try:
            self._finish("failed", counts, chunks_total, str(exc) or type(exc).__name__)
        except AtollError as problem:  # the job's own error matters more
            log.warning("could not record the failure of batch job %s: %s", self.job_id, problem)

    def _finish(
        self, status: str, counts: Counts, chunks_total: int | None, error: str | None
    ) -> None:
        if self.jobs is None or self.job_id is None:
            return
        self.jobs.progress(self.job_id, chunks_total=chunks_total, **asdict(counts))
        self.jobs.finish(self.job_id, status=status, error=error, **asdict(counts))
