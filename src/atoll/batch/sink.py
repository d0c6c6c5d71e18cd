"""Resumable parts and an atomic output.

While a job runs, each finished chunk is one Arrow IPC file (quick to write
and read back, as the parts are read once) in a work folder beside the output
(``<output>.partial/part-000123.arrow``), written to a temporary name and
renamed, so a part either is complete or does not exist.
``job.json`` there holds a key over everything that decides the parts'
content; a rerun with the same key skips the chunks whose part exists, and
one with another key starts over. It also holds the run id, drawn when a job
starts afresh and kept by a rerun with the same key: the rows a job logs are
named after it, so a resume names them as before. When every chunk is done
the parts are streamed, in chunk order, into a temporary file that is fsynced
and renamed onto the output; then the work folder goes. Invalid rows go the
same way into ``<stem>.quarantine.<csv|parquet>`` beside the output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from atoll.batch.read import first_line
from atoll.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa

    from atoll.batch.score import ChunkResult

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
JOB_FILE = "job.json"
LOCK_FILE = "lock"
COUNTS_KEY = b"atoll.batch"
_PART = re.compile(r"part-(\d{6,})\.arrow")
_CHUNK = re.compile(r"part-(\d{6,})\.")
_RUN = re.compile(r"[0-9a-f]{32}")


def output_format(output: Path, given: str | None) -> str:
    """``csv`` or ``parquet``: as given, else from the output's suffix."""
    if given is not None:
        if given not in ("csv", "parquet"):
            raise DataError(f"unknown output format {given!r}: use csv or parquet")
        return given
    kind = FORMATS.get(output.suffix.lower())
    if kind is None:
        raise DataError(
            f"{output}: write predictions to a .csv or .parquet file (or give --format)",
            file=str(output),
        )
    return kind


def quarantine_path(output: Path, fmt: str) -> Path:
    return output.with_name(f"{output.stem}.quarantine.{fmt}")


@dataclass(frozen=True)
class PartCounts:
    """What one finished chunk held: rows read, predicted, refused, and written to the log."""

    rows_in: int
    rows_scored: int
    rows_quarantined: int
    rows_logged: int = 0


class PartSink:
    """The work folder of one output: parts in, one atomic output (and quarantine) out."""

    def __init__(self, output: Path, fmt: str) -> None:
        self.output = output
        self.format = fmt
        self.work = output.with_name(output.name + ".partial")
        self.quarantine = quarantine_path(output, fmt)
        self.run_id = ""
        self._lock: IO[bytes] | None = None
        self._keep = False

    def lock(self) -> None:
        """Create the work folder and take its lock (idempotent), before the input is planned.

        Raises:
            DataError: the output cannot be written, or another job is writing it.
        """
        if self._lock is not None:
            return
        if self.output.is_dir():
            raise DataError(f"the output {self.output} is a directory", file=str(self.output))
        try:
            self.work.mkdir(parents=True, exist_ok=True)
            self._take_lock()
        except OSError as exc:
            self.close()
            raise self._unwritable(exc) from None

    def open(self, key: str, about: dict[str, Any]) -> str | None:
        """Take over the locked work folder; returns a note when earlier parts are dropped.

        Sets :attr:`run_id`: the earlier run's when its key was the same, else a new one.

        Raises:
            DataError: the work folder cannot be written.
        """
        self.lock()
        try:
            previous = _read_job(self.work / JOB_FILE)
            note = self._check_key(key, previous.get("key"))
            run = previous.get("run") if previous.get("key") == key else None
            self.run_id = run if isinstance(run, str) and _RUN.fullmatch(run) else uuid.uuid4().hex
            job = {"key": key, "run": self.run_id, **about}
            _write_atomic(self.work / JOB_FILE, json.dumps(job, indent=2))
        except OSError as exc:
            raise self._unwritable(exc) from None
        return note

    def keep(self) -> None:
        """Keep the work folder if the job fails, even without parts.

        Rows named after its run id are (about to be) in the prediction log:
        the rerun must find the run id to name them alike.
        """
        self._keep = True

    def _unwritable(self, exc: OSError) -> DataError:
        return DataError(
            f"cannot write the output {self.output}: {exc.strerror or exc}", file=str(self.output)
        )

    def _take_lock(self) -> None:
        """One job per output at a time: two would write the same parts."""
        try:
            import fcntl
        except ImportError:  # not on this platform: no lock
            return
        self._lock = (self.work / LOCK_FILE).open("ab")
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.close()
            raise DataError(
                f"another job is writing {self.output} (its parts are in {self.work})",
                file=str(self.output),
            ) from None

    def _check_key(self, key: str, previous: object) -> str | None:
        for leftover in self.work.glob("*.tmp"):
            leftover.unlink()
        parts = list(self.work.glob("part-*.arrow"))
        if previous == key or not parts:
            return None
        for part in parts:
            part.unlink()
        return f"the parts in {self.work} were for other arguments or input: starting over"

    def done(self) -> dict[int, PartCounts]:
        """The chunks whose part exists, with their counts."""
        out: dict[int, PartCounts] = {}
        if not self.work.is_dir():
            return out
        for part in self.work.iterdir():
            match = _PART.fullmatch(part.name)
            if match:
                metadata = _read_schema(part).metadata or {}
                out[int(match.group(1))] = PartCounts(**json.loads(metadata[COUNTS_KEY]))
        return out

    def write(self, result: ChunkResult, rows_logged: int = 0) -> None:
        """Write one chunk's quarantine lines (if any), then its part, which marks it done."""
        if result.quarantine is not None:
            quarantined = self.work / f"part-{result.index:06d}.quarantine.arrow"
            _write_atomic(quarantined, lambda path: _write_ipc(result.quarantine, path))
        counts = part_counts(result, rows_logged)
        table = result.output.replace_schema_metadata(
            {COUNTS_KEY: json.dumps(counts.__dict__).encode()}
        )
        _write_atomic(self._part(result.index), lambda path: _write_ipc(table, path))

    def finish(self, n_chunks: int) -> Path | None:
        """Assemble the output (and the quarantine file) from parts 0 .. n_chunks - 1.

        The quarantine file is assembled first but put in place only once the
        output is: a failure leaves neither new. Returns the quarantine file,
        or None when no row was refused (a stale one from an earlier run of
        this output is removed then).
        """
        missing = [i for i in range(n_chunks) if not self._part(i).is_file()]
        if missing:
            raise DataError(f"the parts of chunks {missing[:5]} are missing from {self.work}")
        quarantined = sorted(self.work.glob("part-*.quarantine.arrow"), key=_chunk_index)
        ready = self._assemble(quarantined, self.quarantine) if quarantined else None
        _publish(self._assemble([self._part(i) for i in range(n_chunks)], self.output), self.output)
        if ready is not None:
            _publish(ready, self.quarantine)
        else:
            with suppress(FileNotFoundError):
                self.quarantine.unlink()
        self.close()
        shutil.rmtree(self.work, ignore_errors=True)
        return self.quarantine if quarantined else None

    def abandon(self) -> None:
        """After a failure: keep the parts for a resume, or remove a folder that holds none.

        A folder :meth:`keep` was called on stays, parts or none.
        """
        self.close()
        if self.work.is_dir() and not self._keep and not any(self.work.glob("part-*.arrow")):
            shutil.rmtree(self.work, ignore_errors=True)

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _part(self, index: int) -> Path:
        return self.work / f"part-{index:06d}.arrow"

    def _assemble(self, parts: list[Path], target: Path) -> Path:
        """The parts, in the given order, in a synced temporary file for ``target``."""
        schema = _unified_schema(parts)
        return _write_temp(
            self.work / f"{target.name}.tmp",
            lambda path: _concatenate(parts, schema, path, self.format),
        )


def _chunk_index(part: Path) -> int:
    """The chunk a part file holds: its number, not its name, orders it (000999 < 1000000)."""
    match = _CHUNK.match(part.name)
    if match is None:
        raise DataError(f"{part} is not a part file")
    return int(match.group(1))


def part_counts(result: ChunkResult, rows_logged: int = 0) -> PartCounts:
    """The counts of a scored chunk, as its part records them."""
    return PartCounts(result.rows_in, result.output.num_rows, result.rows_quarantined, rows_logged)


def _read_job(path: Path) -> dict[str, Any]:
    """The work folder's ``job.json``, or an empty dict when it is missing or unreadable."""
    try:
        job = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return job if isinstance(job, dict) else {}


def _unified_schema(parts: list[Path]) -> pa.Schema:
    """One schema for every part: a column null in one chunk takes its type from the others."""
    import pyarrow as pa

    schemas = [_read_schema(part).remove_metadata() for part in parts]
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"the chunks' columns disagree on types: {first_line(exc)}") from None


def _write_ipc(table: pa.Table, path: Path) -> None:
    import pyarrow as pa

    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _read_schema(part: Path) -> pa.Schema:
    import pyarrow as pa

    with pa.memory_map(str(part)) as source:
        return pa.ipc.open_file(source).schema


def _tables(parts: list[Path], schema: pa.Schema) -> Iterator[pa.Table]:
    import pyarrow as pa

    for part in parts:
        with pa.memory_map(str(part)) as source:
            table = pa.ipc.open_file(source).read_all().replace_schema_metadata(None)
        yield table.select(schema.names).cast(schema)


def _concatenate(parts: list[Path], schema: pa.Schema, path: Path, fmt: str) -> None:
    """Stream the parts into one file, one part in memory at a time."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    writer: Any = (
        pq.ParquetWriter(path, schema) if fmt == "parquet" else pacsv.CSVWriter(path, schema)
    )
    with writer:
        for table in _tables(parts, schema):
            writer.write_table(table)


def _write_atomic(target: Path, content: str | Callable[[Path], None]) -> None:
    """Write to a temporary name, fsync, rename over ``target``: whole or not at all."""
    _publish(_write_temp(target.parent / f"{target.name}.tmp", content), target)


def _write_temp(tmp: Path, content: str | Callable[[Path], None]) -> Path:
    """Write ``tmp`` and fsync it; :func:`_publish` renames it into place."""
    if isinstance(content, str):
        tmp.write_text(content, encoding="utf-8")
    else:
        content(tmp)
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    return tmp


def _publish(tmp: Path, target: Path) -> None:
    """Rename a synced temporary file over ``target``, durably."""
    tmp.replace(target)
    _fsync_dir(target.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (where the platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
