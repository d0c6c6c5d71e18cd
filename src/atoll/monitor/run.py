"""One monitoring run: a version's reference, a window read in chunks, every check, stored.

This is the only part of :mod:`atoll.monitor` that does I/O: it reads the
reference through the registry's one load path and the window through the
store, and records each check's result for the UI and the scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from atoll.model.package import read_manifest
from atoll.monitor.checks import WindowChecks
from atoll.monitor.reference import Reference, load_reference
from atoll.monitor.report import Report
from atoll.spec_serve import MonitorSpec
from atoll.store.logwindow import count_unmatched_feedback, iter_log_chunks
from atoll.store.monitoring import save_results
from atoll.types import ModelRef

if TYPE_CHECKING:
    from atoll.store.registry import Registry

LOG_CHUNK_ROWS = 20_000
"""Log rows per chunk: memory per chunk is some 20 MB whatever the window's length."""


@dataclass(frozen=True)
class Window:
    """What to read: a span of the log (ends may be open) or, with ``data``, a data file."""

    since: datetime | None = None
    until: datetime | None = None
    data: Path | None = None


def reference_of(registry: Registry, ref: ModelRef) -> Reference:
    """The reference profile of the version ``ref`` names, from its verified package.

    Raises:
        NotFoundError: the reference does not resolve.
        PackageError: the version has no reference profile.
    """
    info = registry.get_version(ref)
    directory = registry.fetch_package(ModelRef(info.name, version=info.version))
    return load_reference(directory, read_manifest(directory), info.version)


def run_report(
    registry: Registry, ref: ModelRef, window: Window, spec: MonitorSpec, *, save: bool = True
) -> Report:
    """Judge one window of a version's traffic (or a data file) against its reference.

    A data file has no time window: its results are stored with NULL window
    ends, and every stored result names its source (``"log"`` or the file).

    Raises:
        ValueError: a data file together with a time window.
    """
    if window.data is not None and (window.since is not None or window.until is not None):
        raise ValueError("a data file has no time window: give the file or the window, not both")
    reference = reference_of(registry, ref)
    checks = WindowChecks(reference)
    span = (window.since, window.until)
    unmatched = None
    if window.data is not None:
        from atoll.data.sources import iter_frames

        for frame in iter_frames(str(window.data)):
            checks.add_frame(frame)
        source = str(window.data)
    else:
        chunks = iter_log_chunks(
            registry.engine,
            reference.model,
            since=window.since,
            until=window.until,
            version=reference.version,
            batch_rows=LOG_CHUNK_ROWS,
        )
        for chunk in chunks:
            checks.add_chunk(chunk)
        unmatched = count_unmatched_feedback(
            registry.engine, since=window.since, until=window.until
        )
        source = "log"
    report = checks.report(spec, source=source, window=span, feedback_unmatched=unmatched)
    if save:
        plain = report.to_dict()["checks"]
        results = {
            name: (result["status"], {**result, "source": source}) for name, result in plain.items()
        }
        save_results(registry.engine, reference.model, reference.version, span, results)
    return report
