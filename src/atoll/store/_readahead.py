"""Producing the next item of a generator in a worker thread while the caller uses this one.

Reading a log window alternates between the database driver (stepping
through rows, building Python objects) and decoding and folding (mostly C++
and NumPy, without the GIL): running the reading one chunk ahead in a thread
lets the two overlap on a second core. At most two items exist at a time.
"""

from __future__ import annotations

from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import TypeVar, cast

T = TypeVar("T")

_DONE = object()


def read_ahead(items: Generator[T, None, None], name: str) -> Generator[T, None, None]:
    """Yield what ``items`` yields, the next one being produced meanwhile.

    ``items`` runs in one worker thread only (a database connection it opens
    stays in that thread) and is closed there, also when the caller stops
    early. Its exceptions reach the caller.
    """
    with ThreadPoolExecutor(1, name) as worker:
        pending = worker.submit(next, items, _DONE)
        try:
            while (item := pending.result()) is not _DONE:
                pending = worker.submit(next, items, _DONE)
                yield cast(T, item)
        finally:
            with suppress(Exception):  # its error, if any, is already the caller's
                pending.result()
            worker.submit(items.close).result()
