from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from atoll.errors import NotFoundError, RegistryError
from atoll.store.db import create_engine_for
from atoll.store.jobs import BatchJob, JobStore
from atoll.types import InvalidNameError

OPTIONS: dict[str, Any] = {
    "engine": "local",
    "workers": 2,
    "chunk_rows": 100_000,
    "format": "parquet",
    "passthrough": ["id"],
}


@pytest.fixture
def jobs(engine: sa.Engine) -> JobStore:
    return JobStore(engine)


def start(jobs: JobStore, model: str = "credit-risk", version: int = 3) -> BatchJob:
    return jobs.start(
        model=model,
        version=version,
        input="data/*.parquet",
        input_fingerprint="ab" * 32,
        output="out/scores.parquet",
        options=OPTIONS,
    )


def test_a_job_is_recorded_running_with_zero_counts(jobs: JobStore) -> None:
    job = start(jobs)
    assert len(job.job_id) == 32 and int(job.job_id, 16) >= 0
    assert (job.model, job.version, job.status) == ("credit-risk", 3, "running")
    assert (job.input, job.output) == ("data/*.parquet", "out/scores.parquet")
    assert job.input_fingerprint == "ab" * 32
    assert (job.rows_scored, job.rows_quarantined, job.chunks_done) == (0, 0, 0)
    assert job.chunks_total is None and job.finished_at is None and job.seconds is None
    assert job.error is None and job.options == OPTIONS
    assert job.started_at.tzinfo is not None
    assert jobs.get(job.job_id) == job


def test_progress_then_success_keeps_the_final_counts_and_timing(jobs: JobStore) -> None:
    job = start(jobs)
    jobs.progress(job.job_id, rows_scored=100, rows_quarantined=2, chunks_done=1, chunks_total=None)
    jobs.progress(job.job_id, rows_scored=300, rows_quarantined=5, chunks_done=3, chunks_total=10)
    seen = jobs.get(job.job_id)
    assert (seen.status, seen.rows_scored, seen.rows_quarantined) == ("running", 300, 5)
    assert (seen.chunks_done, seen.chunks_total) == (3, 10)
    done = jobs.finish(
        job.job_id,
        status="succeeded",
        rows_scored=5_000_000_000,
        rows_quarantined=7,
        chunks_done=10,
    )
    assert done.status == "succeeded" and done.error is None
    assert done.rows_scored == 5_000_000_000  # past 32 bits
    assert (done.rows_quarantined, done.chunks_done, done.chunks_total) == (7, 10, 10)
    assert done.finished_at is not None and done.finished_at >= done.started_at
    assert done.seconds is not None
    assert done.seconds == (done.finished_at - done.started_at).total_seconds()
    assert jobs.get(job.job_id) == done


def test_rows_logged_are_kept_in_the_options_as_they_grow(jobs: JobStore) -> None:
    job = start(jobs)
    assert job.rows_logged is None  # a job that does not feed the prediction log
    jobs.progress(
        job.job_id, rows_scored=100, rows_quarantined=0, chunks_done=1, chunks_total=4,
        rows_logged=50,
    )  # fmt: skip
    assert jobs.get(job.job_id).rows_logged == 50
    done = jobs.finish(
        job.job_id, status="succeeded", rows_scored=400, rows_quarantined=0, chunks_done=4,
        rows_logged=200,
    )  # fmt: skip
    assert done.rows_logged == 200
    assert done.options == {**OPTIONS, "rows_logged": 200}
    with pytest.raises(RegistryError, match="rows_logged cannot be negative"):
        jobs.progress(
            start(jobs).job_id, rows_scored=1, rows_quarantined=0, chunks_done=1,
            chunks_total=None, rows_logged=-1,
        )  # fmt: skip


def test_a_failed_job_keeps_its_error_cut_to_a_bounded_length(jobs: JobStore) -> None:
    job = start(jobs)
    message = "corrupt Parquet file data/part-3.parquet at row group 2\n" + "x" * 20_000
    failed = jobs.finish(
        job.job_id,
        status="failed",
        rows_scored=10,
        rows_quarantined=0,
        chunks_done=1,
        error=message,
    )
    assert failed.status == "failed"
    assert failed.error is not None and failed.error.startswith("corrupt Parquet file data/")
    assert len(failed.error) == 10_000


def test_a_job_finishes_once_and_takes_no_progress_after(jobs: JobStore) -> None:
    job = start(jobs)
    first = jobs.finish(
        job.job_id, status="succeeded", rows_scored=1, rows_quarantined=0, chunks_done=1
    )
    with pytest.raises(RegistryError, match="already finished \\(succeeded\\)"):
        jobs.finish(job.job_id, status="failed", rows_scored=1, rows_quarantined=0, chunks_done=1)
    with pytest.raises(RegistryError, match="already finished"):
        jobs.progress(job.job_id, rows_scored=2, rows_quarantined=0, chunks_done=2, chunks_total=2)
    assert jobs.get(job.job_id) == first


def test_unknown_ids_are_not_found_naming_the_id(jobs: JobStore) -> None:
    missing = "0" * 32
    with pytest.raises(NotFoundError, match=missing):
        jobs.get(missing)
    with pytest.raises(NotFoundError, match=missing):
        jobs.progress(missing, rows_scored=0, rows_quarantined=0, chunks_done=0, chunks_total=None)
    with pytest.raises(NotFoundError, match=missing):
        jobs.finish(missing, status="failed", rows_scored=0, rows_quarantined=0, chunks_done=0)


def test_bad_values_are_refused_before_anything_is_written(jobs: JobStore) -> None:
    job = start(jobs)
    with pytest.raises(RegistryError, match="not 'done'"):
        jobs.finish(job.job_id, status="done", rows_scored=0, rows_quarantined=0, chunks_done=0)
    with pytest.raises(RegistryError, match="rows_scored cannot be negative"):
        jobs.progress(job.job_id, rows_scored=-1, rows_quarantined=0, chunks_done=0, chunks_total=1)
    with pytest.raises(RegistryError, match="chunks_total cannot be negative"):
        jobs.progress(job.job_id, rows_scored=0, rows_quarantined=0, chunks_done=0, chunks_total=-1)
    with pytest.raises(RegistryError, match="plain JSON"):
        jobs.start(
            model="m",
            version=1,
            input="x.csv",
            input_fingerprint="f",
            output="y.csv",
            options={"path": object()},
        )
    with pytest.raises(InvalidNameError):
        start(jobs, model="no spaces allowed")
    with pytest.raises(RegistryError, match="at least 1"):
        jobs.list(limit=0)
    assert [j.job_id for j in jobs.list()] == [job.job_id]
    assert jobs.get(job.job_id).status == "running"


def test_list_is_newest_first_filtered_by_model_and_limited(jobs: JobStore) -> None:
    a = start(jobs, model="credit-risk")
    b = start(jobs, model="churn")
    c = start(jobs, model="credit-risk", version=4)
    assert [j.job_id for j in jobs.list()] == [c.job_id, b.job_id, a.job_id]
    assert [j.job_id for j in jobs.list(model="credit-risk")] == [c.job_id, a.job_id]
    assert [j.job_id for j in jobs.list(limit=2)] == [c.job_id, b.job_id]
    assert jobs.list(model="nobody") == []


def test_another_process_engine_sees_the_same_records(jobs: JobStore, engine: sa.Engine) -> None:
    job = start(jobs)
    other = create_engine_for(engine.url.render_as_string(hide_password=False))
    try:
        JobStore(other).progress(
            job.job_id, rows_scored=42, rows_quarantined=1, chunks_done=1, chunks_total=4
        )
    finally:
        other.dispose()
    assert jobs.get(job.job_id).rows_scored == 42
