"""The Dask engine: the same chunk function on a dask.distributed cluster.

Given ``--address`` it joins that scheduler (its workers need atoll installed,
and must see Parquet inputs at the same paths, since they read them
themselves); without one it starts a LocalCluster of ``workers`` processes
with one thread each. The job's context is one task whose result every
worker fetches once (a task, so that a lost copy is computed again).
A worker that dies has its task rerun elsewhere by the scheduler (its
``distributed.scheduler.allowed-failures``: 1 on the LocalCluster, the
cluster's own setting on a remote one); a task that kills workers again fails
the job. A task that raises is not retried: its failure (a corrupt row group,
``--fail-on-invalid``) would only happen again.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

from atoll.batch.engines import windowed
from atoll.errors import AtollError

C = TypeVar("C")
T = TypeVar("T")
R = TypeVar("R")

CONNECT_TIMEOUT_S = 10.0
"""How long to wait for a scheduler before saying it cannot be reached."""

LARGE_TASK = "2GiB"
"""CSV and SQL chunks travel inside their tasks: not the large graph Dask warns about."""


class DaskEngine:
    """Runs tasks on a Dask cluster: the one at ``address``, or a LocalCluster."""

    def __init__(
        self,
        workers: int,
        address: str | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.workers = workers
        self.address = address
        self.peak_in_flight = 0
        self._timeout = connect_timeout_s
        self._client: Any = None
        self._cluster: Any = None

    def start(self) -> None:
        from distributed import Client

        if self.address is None:
            self._cluster = _local_cluster(self.workers)
            self._client = Client(self._cluster)  # type: ignore[no-untyped-call]
            return
        _check_reachable(self.address, self._timeout)
        try:
            self._client = Client(self.address, timeout=self._timeout)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as exc:
            raise _unreachable(self.address, exc) from None
        self.workers = max(1, len(self._client.scheduler_info()["workers"]))

    def map_unordered(
        self, fn: Callable[[C, T], R], context: C, tasks: Iterable[T]
    ) -> Iterator[tuple[T, R]]:
        if self._client is None:
            self.start()
        import dask

        # A task, not scattered data: scattered data has no recipe, and the scheduler's
        # memory manager keeps one replica of it (ReduceReplicas, every 2 s), so the death
        # of the worker holding that replica failed every task of the job ("already
        # forgotten"). A task that is lost is run again from its graph.
        with dask.config.set({"distributed.admin.large-graph-warning-threshold": LARGE_TASK}):
            shared = self._client.submit(_the_context, context, pure=False)
        return windowed(self, tasks, _DaskBackend(self._client, fn, shared))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def _the_context(context: C) -> C:
    """The job's context as a task's result (see :meth:`DaskEngine.map_unordered`)."""
    return context


def _local_cluster(workers: int) -> Any:
    """A LocalCluster whose scheduler gives a task one retry after its worker died."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        return LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # a free port: 8787 may be taken
            silence_logs=logging.ERROR,
        )


def _check_reachable(address: str, timeout_s: float) -> None:
    """Fail in at most ``timeout_s`` when nothing listens at a ``tcp://`` address."""
    parts = urlsplit(address)
    if parts.scheme != "tcp" or parts.hostname is None or parts.port is None:
        return  # tls://, ucx://, ...: Dask's own connect timeout applies
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise _unreachable(address, exc) from None


def _unreachable(address: str, exc: BaseException) -> AtollError:
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return AtollError(f"cannot reach the Dask scheduler at {address}: {reason}", address=address)


class _DaskBackend:
    def __init__(self, client: Any, fn: Callable[..., Any], shared: Any) -> None:
        from distributed import as_completed

        self.client, self.fn, self.shared = client, fn, shared
        self.tasks: dict[Any, Any] = {}
        # on this client's loop: distributed.wait() would use the default client's, which
        # is another one when the caller has a Client of its own
        self.completed: Any = as_completed(loop=client.loop)  # type: ignore[no-untyped-call]

    def submit(self, task: Any) -> Any:
        import dask

        with dask.config.set({"distributed.admin.large-graph-warning-threshold": LARGE_TASK}):
            future = self.client.submit(self.fn, self.shared, task, pure=False)
        self.tasks[future.key] = task
        self.completed.add(future)
        return future

    def wait_any(self, futures: list[Any]) -> Iterable[Any]:
        first = next(self.completed)
        return [first, *self.completed.next_batch(block=False)]

    def result(self, future: Any) -> Any:
        from distributed import KilledWorker

        task = self.tasks.pop(future.key)
        try:
            return future.result()
        except KilledWorker:
            raise AtollError(
                f"Dask workers died while scoring {task}; the chunks done so "
                "far are kept: run the same command again to resume"
            ) from None
        finally:
            future.release()
