"""The access log: one JSON line per request, on the ``atoll.access`` logger.

Going through ``logging`` costs a request ~15 µs (a ``LogRecord``, the
logger's and handler's locks and filters, a formatter) for a line that is
already text: more than metrics and the rest of the access line together.
When the logger's only destination is the server's own :class:`BufferedLines`
handler (the default that ``atoll serve`` sets up), :class:`AccessLog` appends
the line to that handler directly; a logger that anyone reconfigured (other
handlers, filters, propagation to the root) gets ordinary records instead.
"""

from __future__ import annotations

import logging
from typing import Any

ACCESS_LOGGER = "atoll.access"


class BufferedLines(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each record's message as one line, in blocks: per ``capacity`` lines or ``flush()``.

    A plain StreamHandler flushes the stream after every line (a system call
    per request for the access log); the server's flush task calls
    :meth:`flush` twice a second, so a line waits at most that long.
    """

    def __init__(self, stream: Any, capacity: int = 256) -> None:
        super().__init__(stream)
        self.capacity = capacity
        self._lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = record.getMessage()
        except Exception:
            self.handleError(record)
            return
        self.add(line)

    def add(self, line: str) -> None:
        """Queue one line (written at the next flush, or now if the block is full)."""
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self._lines.append(line)
            full = len(self._lines) >= self.capacity
        if full:
            self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            lines, self._lines = self._lines, []
            if lines:
                self.stream.write("\n".join(lines) + "\n")
            super().flush()

    def close(self) -> None:
        self.flush()
        super().close()


class AccessLog:
    """Writes access lines to ``logger``: straight into its buffer when nothing else listens."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def write(self, line: str) -> None:
        """Log one line (call when :attr:`enabled`)."""
        handler = self._sole_buffer()
        if handler is not None:
            handler.add(line)
            return
        logger = self.logger
        # makeRecord + handle: logger.info would also walk the stack for the caller
        logger.handle(logger.makeRecord(logger.name, logging.INFO, "", 0, line, (), None))

    def _sole_buffer(self) -> BufferedLines | None:
        """The logger's one handler, if it is a plain buffer that takes every line as it is."""
        logger = self.logger
        handlers = logger.handlers
        if len(handlers) != 1 or logger.propagate or logger.filters:
            return None
        handler = handlers[0]
        if type(handler) is not BufferedLines or handler.filters or handler.level > logging.INFO:
            return None
        return handler
