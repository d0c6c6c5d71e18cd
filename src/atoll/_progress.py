"""Stage timing and progress reporting, without knowing who displays it.

Long work (training, batch scoring) runs in named stages; a :class:`Reporter`
supplied by the face (a rich display in the CLI, nothing in tests) is told
when each starts and ends. Timings are kept for lineage either way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol


class Reporter(Protocol):
    """Receives stage events; implementations must be cheap."""

    def started(self, stage: str) -> None: ...

    def finished(self, stage: str, seconds: float, note: str) -> None: ...

    def failed(self, stage: str) -> None: ...


@dataclass
class Note:
    """A line a stage may leave for the display, e.g. ``"48,000 rows"``."""

    text: str = ""


@dataclass
class Stages:
    """Times named stages and forwards their events to an optional reporter."""

    reporter: Reporter | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[Note]:
        note = Note()
        if self.reporter is not None:
            self.reporter.started(name)
        start = time.perf_counter()
        try:
            yield note
        except BaseException:
            if self.reporter is not None:
                self.reporter.failed(name)
            raise
        seconds = time.perf_counter() - start
        self.timings[name] = round(seconds, 4)
        if self.reporter is not None:
            self.reporter.finished(name, seconds, note.text)
