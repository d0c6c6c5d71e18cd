"""The local engine's worker processes: bounded in flight, and what happens when one dies."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

from atoll import api
from atoll.batch.job import Progress
from atoll.batch.plan import plan_files
from atoll.errors import AtollError
from tests.batch.conftest import REF, ROWS, Inputs, Score, done_chunks, write_rows
from tests.conftest import TrainedProject

WORKERS = 2


def pool_workers() -> list[psutil.Process]:
    """This test's worker processes: the children of its multiprocessing fork server."""
    servers = [
        child for child in psutil.Process().children() if "forkserver" in " ".join(child.cmdline())
    ]
    return [worker for server in servers for worker in server.children()]


class KillWorkers:
    """A progress reporter that kills a real worker process after the first ``times`` tasks."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.killed: list[int] = []

    def note(self, text: str) -> None:
        return None

    def progress(self, progress: Progress) -> None:
        workers = pool_workers()  # none between a dead pool and its replacement
        if workers and len(self.killed) < self.times:
            os.kill(workers[0].pid, signal.SIGKILL)
            self.killed.append(workers[0].pid)


def test_memory_is_bounded_by_the_chunk_and_the_workers(
    trained_project: TrainedProject, inputs: Inputs, score: Score, tmp_path: Path
) -> None:
    """An input many times the chunk size: no task over it, at most 2 tasks per worker out.

    One source is a single row group of every row: it is cut into tasks of
    ``chunk_rows`` too, so memory follows the chunk and not the row group.
    """
    one_group = write_rows(inputs.frame, tmp_path / "one-group.parquet", row_group_size=ROWS)
    assert pq.read_metadata(one_group).num_row_groups == 1
    schema = api.load(REF, settings=trained_project.settings).schema
    for source in (inputs.csv, inputs.parquet, one_group):
        tasks = list(plan_files(str(source), schema, 128, None).tasks())
        assert max(task.n_rows for task in tasks) <= 128
        assert sum(task.n_rows for task in tasks) == ROWS
        summary, out = score(source, f"{source.stem}.parquet", workers=WORKERS, chunk_rows=128)
        assert summary.rows_scored == ROWS == len(out)
        assert summary.chunks == len(tasks) == -(-ROWS // 128)
        assert summary.largest_chunk_rows == 128
        assert 1 <= summary.peak_in_flight <= 2 * WORKERS
        assert out["row"].tolist() == list(range(ROWS))


def test_a_dead_worker_is_replaced_and_its_chunks_retried(inputs: Inputs, score: Score) -> None:
    killer = KillWorkers(times=1)
    summary, out = score(inputs.parquet, workers=WORKERS, chunk_rows=100, reporter=killer)
    assert len(killer.killed) == 1
    assert not psutil.pid_exists(killer.killed[0])
    assert summary.rows_scored == ROWS
    assert out.equals(inputs.expected.astype(dict(out.dtypes)))


def test_a_chunk_whose_worker_dies_twice_fails_the_job_keeping_done_parts(
    inputs: Inputs, score: Score, tmp_path: Path
) -> None:
    killer = KillWorkers(times=1_000)
    with pytest.raises(AtollError, match="a worker process died twice while scoring rows "):
        score(inputs.parquet, workers=WORKERS, chunk_rows=100, reporter=killer)
    assert 2 <= len(killer.killed) < ROWS // 100
    assert done_chunks(tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()
