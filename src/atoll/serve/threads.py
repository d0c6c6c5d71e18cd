"""How many numeric threads (OpenMP, BLAS) a model thread may use for one batch.

Workers must never oversubscribe the cores: with several workers each model
thread keeps to one thread. But a worker that has cores to itself (one worker
on two cores) would leave them idle on a large request: a 1,000-row request
then spends most of its time in the model, on one core. So each worker gets
its share of the cores (cores // workers), used only for batches of at least
``LARGE_BATCH_ROWS`` rows. Small batches, what a loaded server of one-row
requests makes, stay on one thread, where a parallel region costs more than
it saves and an idle OpenMP thread would spin on the core the event loop needs.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from typing import Any, TypeVar

from threadpoolctl import ThreadpoolController

from .batching import Columns, RunBatch

R = TypeVar("R")

LARGE_BATCH_ROWS = 256
"""From this many rows a batch may use the worker's whole share of the cores."""


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cores_per_worker(workers: int) -> int:
    return max(1, usable_cpus() // max(1, workers))


class NumericThreads:
    """The thread limits of one model thread: one by default, ``share`` for large batches."""

    def __init__(self, share: int) -> None:
        self.share = max(1, share)
        self._controller: ThreadpoolController | None = None

    def start(self) -> None:
        """Limit the calling thread's numeric libraries to one thread.

        The initializer of the model thread and of the event loop's thread, which
        predicts small batches itself (an OpenMP limit holds per thread).

        The controller is made here, after the model was loaded, so it knows the
        libraries the model brought (a LightGBM or scikit-learn OpenMP runtime).
        """
        self._controller = ThreadpoolController()
        self._controller.limit(limits=1)

    def wrap(self, run: RunBatch[R]) -> RunBatch[R]:
        """``run``, given the worker's share of the cores when its batch is large."""
        if self.share == 1:
            return run

        def run_sized(columns: Columns, counts: list[int]) -> list[R | BaseException]:
            with self._limits(sum(counts)):
                return run(columns, counts)

        return run_sized

    def _limits(self, rows: int) -> Any:
        if rows < LARGE_BATCH_ROWS or self._controller is None:
            return nullcontext()
        return self._controller.limit(limits=self.share)
