"""The numeric threads a model thread may use: one, or its share of the cores for large batches."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from threadpoolctl import threadpool_info

from atoll.serve.batching import Columns
from atoll.serve.threads import LARGE_BATCH_ROWS, NumericThreads, cores_per_worker, usable_cpus


def openmp_threads_seen(threads: NumericThreads, batches: list[int]) -> list[set[int]]:
    """The OpenMP thread counts each batch sees, run one after the other on one model thread."""

    def run(columns: Columns, counts: list[int]) -> list[set[int]]:
        return [{i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"}]

    wrapped = threads.wrap(run)
    with ThreadPoolExecutor(1, initializer=threads.start) as model_thread:
        return [
            model_thread.submit(wrapped, {"x": [0.0] * rows}, [rows]).result()[0]
            for rows in batches
        ]


def test_a_worker_gets_its_share_of_the_cores_and_never_less_than_one() -> None:
    cpus = usable_cpus()
    assert cores_per_worker(1) == cpus
    assert cores_per_worker(cpus) == 1
    assert cores_per_worker(cpus * 4) == 1


def test_small_batches_keep_one_thread_and_large_ones_use_the_share() -> None:
    import sklearn.ensemble  # noqa: F401  (brings an OpenMP runtime to limit)

    batches = [1, LARGE_BATCH_ROWS - 1, LARGE_BATCH_ROWS, 1, LARGE_BATCH_ROWS * 4, 2]
    # the share applies to the large batch only: the limit is put back after it
    assert openmp_threads_seen(NumericThreads(3), batches) == [{1}, {1}, {3}, {1}, {3}, {1}]


def test_a_worker_without_spare_cores_always_keeps_one_thread() -> None:
    import sklearn.ensemble  # noqa: F401

    assert openmp_threads_seen(NumericThreads(1), [LARGE_BATCH_ROWS * 4]) == [{1}]
