"""The Dask engine on a real dask.distributed LocalCluster of two worker processes."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from atoll.batch.job import Progress
from tests.batch.conftest import ROWS, Inputs, Score, write_rows
from tests.batch.test_parity import assert_same

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("batch-dask")]

WORKERS = 2


@pytest.fixture(scope="module")
def cluster() -> Iterator[Client]:
    """One cluster for the module: starting one costs seconds."""
    with (
        LocalCluster(
            n_workers=WORKERS,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # a free port: 8787 may be taken
            silence_logs=logging.ERROR,
        ) as local,
        Client(local) as client,
    ):
        yield client


def address(client: Client) -> str:
    return str(client.scheduler.address)


class KillOneWorker:
    """A progress reporter that kills a Dask worker the scheduler says is running a task.

    ``held`` keeps the keys of the tasks it was running when it was killed,
    so the test knows work was lost with it and had to be run elsewhere.
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self.pids: dict[str, int] = client.run(os.getpid)
        self.killed: int | None = None
        self.held: list[str] = []

    def note(self, text: str) -> None:
        return None

    def progress(self, progress: Progress) -> None:
        if self.killed is not None:
            return
        for worker, keys in self.client.processing().items():
            if keys and worker in self.pids:
                self.killed, self.held = self.pids[worker], list(keys)
                os.kill(self.killed, signal.SIGKILL)
                return


class KillContextHolders:
    """A progress reporter that kills every worker holding the job's context.

    The context is the one key on the workers that is no chunk's task: with
    every copy of it gone, the job goes on only if the scheduler can compute
    it again.
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self.pids: dict[str, int] = client.run(os.getpid)
        self.killed: list[int] = []

    def note(self, text: str) -> None:
        return None

    def progress(self, progress: Progress) -> None:
        if self.killed:
            return
        for worker, keys in self.client.has_what().items():
            if worker in self.pids and any(not str(k).startswith("score_task") for k in keys):
                self.killed.append(self.pids[worker])
        for pid in self.killed:
            os.kill(pid, signal.SIGKILL)


def test_parquet_and_csv_on_a_cluster_equal_predictor(
    cluster: Client, inputs: Inputs, score: Score
) -> None:
    for source in (inputs.parquet, inputs.csv):
        summary, out = score(source, engine="dask", address=address(cluster), chunk_rows=300)
        assert_same(out, inputs.expected)
        assert (summary.engine, summary.workers) == ("dask", WORKERS)
        assert summary.largest_chunk_rows <= 300
        assert 1 <= summary.peak_in_flight <= 2 * WORKERS


def scores_everything_despite(
    killer: KillOneWorker | KillContextHolders, cluster: Client, inputs: Inputs, score: Score
) -> None:
    """The job, with ``killer`` as its progress reporter, still scores every row right."""
    summary, out = score(
        inputs.parquet, engine="dask", address=address(cluster), chunk_rows=100, reporter=killer
    )
    assert summary.rows_scored == ROWS
    assert_same(out, inputs.expected)


def test_a_killed_dask_worker_has_its_chunks_run_elsewhere(
    cluster: Client, inputs: Inputs, score: Score
) -> None:
    killer = KillOneWorker(cluster)
    scores_everything_despite(killer, cluster, inputs, score)
    assert killer.killed is not None, "no worker was ever seen running a task"
    assert killer.held  # it was running a task when it died: that task ran again elsewhere


def test_losing_every_copy_of_the_context_does_not_fail_the_job(
    cluster: Client, inputs: Inputs, score: Score
) -> None:
    """The scheduler's memory manager keeps one copy of data it cannot recompute."""
    killer = KillContextHolders(cluster)
    scores_everything_despite(killer, cluster, inputs, score)
    assert killer.killed, "no worker was seen holding the context"


def test_without_an_address_a_local_cluster_of_workers_is_started(
    inputs: Inputs, score: Score, tmp_path: Path
) -> None:
    source = write_rows(inputs.frame.head(600), tmp_path / "in" / "rows.parquet")
    summary, out = score(source, engine="dask", workers=WORKERS, chunk_rows=200)
    assert (summary.engine, summary.workers, summary.chunks) == ("dask", WORKERS, 3)
    assert_same(out, inputs.expected.head(600))
