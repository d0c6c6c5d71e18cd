"""Spill files: where log rows go when the database cannot take them, until it can.

Each process appends to its own ``spill-<pid>-<uuid>.jsonl`` and holds an
exclusive ``flock`` on it while it is open, so no other process replays a file
still being written. A row is durable once its line is written and the file
fsynced. Replaying a file takes the same lock without waiting (a file someone
else holds is left for later), inserts its rows idempotently and deletes it;
a crash between the commit and the delete only means the rows are inserted
again, and ignored, next time.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson

from atoll.store.artifacts import fsync_dir

logger = logging.getLogger("atoll.predlog")

PATTERN = "spill-*.jsonl"
_FIELDS = frozenset(
    {
        "prediction_id",
        "request_id",
        "created_at",
        "model",
        "version",
        "role",
        "inputs",
        "outputs",
        "latency_ms",
        "key_id",
    }
)


class SpillFile:
    """This process's current spill file: created on first use, locked while open."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._handle: IO[bytes] | None = None
        self._lock = threading.Lock()

    def append(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append rows as JSON lines and fsync: when this returns, they survive a crash.

        Raises:
            OSError: the file could not be written; nothing of ``rows`` is left in it.
        """
        data = b"".join(orjson.dumps(row) + b"\n" for row in rows)
        with self._lock:
            handle = self._handle or self._open()
            start = handle.tell()
            try:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            except OSError:
                self._abandon(handle, start)
                raise

    def close(self) -> None:
        """Release the file and its lock, so it can be replayed; the next append starts anew."""
        with self._lock:
            if self._handle is not None:
                handle, self._handle = self._handle, None
                handle.close()  # closing drops the flock

    def _open(self) -> IO[bytes]:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"spill-{os.getpid()}-{uuid.uuid4().hex}.jsonl"
        handle = path.open("ab")
        _try_lock(handle)  # a brand-new name: nobody else can hold it
        fsync_dir(self.directory)
        self._handle = handle
        return handle

    def _abandon(self, handle: IO[bytes], start: int) -> None:
        """Cut a half-written append off, so the next line never joins a torn one."""
        self._handle = None
        try:
            handle.truncate(start)
        except OSError:  # the torn tail stays; replay skips an unreadable line
            logger.exception("could not truncate the spill file %s", handle.name)
        finally:
            handle.close()


def replay(directory: Path, insert: Callable[[list[dict[str, Any]]], None], chunk: int) -> int:
    """Insert the rows of every spill file nobody holds, deleting each once committed.

    Returns:
        How many rows were replayed.

    Raises:
        Exception: whatever ``insert`` raised; the file being replayed stays for next time.
    """
    total = 0
    for path in sorted(directory.glob(PATTERN)):
        with _claimed(path) as handle:
            if handle is not None:
                total += _replay_file(path, handle, insert, chunk)
    return total


def spill_files(directory: Path) -> list[Path]:
    """The spill files waiting in ``directory``."""
    return sorted(directory.glob(PATTERN)) if directory.is_dir() else []


def _replay_file(
    path: Path, handle: IO[bytes], insert: Callable[[list[dict[str, Any]]], None], chunk: int
) -> int:
    count = 0
    batch: list[dict[str, Any]] = []
    for number, line in enumerate(handle, start=1):
        row = _decode(line)
        if row is None:
            logger.error("skipped unreadable line %d of spill file %s", number, path)
            continue
        batch.append(row)
        if len(batch) >= chunk:
            insert(batch)
            count += len(batch)
            batch = []
    if batch:
        insert(batch)
        count += len(batch)
    path.unlink(missing_ok=True)
    logger.info("replayed %d prediction log record(s) from %s", count, path.name)
    return count


def _decode(line: bytes) -> dict[str, Any] | None:
    if not line.endswith(b"\n"):  # torn by a crash mid-append: never acknowledged
        return None
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(row, dict) or set(row) != _FIELDS:
        return None
    try:
        row["created_at"] = datetime.fromisoformat(row["created_at"])
    except (TypeError, ValueError):
        return None
    return row


@contextmanager
def _claimed(path: Path) -> Iterator[IO[bytes] | None]:
    """The file opened and locked, or None if it is gone or another holder has it."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        yield None
        return
    with handle:
        # Locked by someone else, or deleted by a replayer that held it before us.
        if not _try_lock(handle) or os.fstat(handle.fileno()).st_nlink == 0:
            yield None
        else:
            yield handle


def _try_lock(handle: IO[bytes]) -> bool:
    if sys.platform == "win32":  # pragma: no cover - serving is POSIX-first
        return True
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
