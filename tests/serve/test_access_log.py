"""The access log: lines written in blocks, each line whole, straight or through logging."""

from __future__ import annotations

import io
import logging

import pytest

from atoll.serve.access_log import AccessLog, BufferedLines


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("atoll.access", logging.INFO, "", 0, message, (), None)


def test_lines_wait_for_a_flush_then_go_out_in_one_write() -> None:
    stream = CountingStream()
    handler = BufferedLines(stream, capacity=100)
    for i in range(3):
        handler.handle(record(f'{{"n": {i}}}'))
    assert stream.getvalue() == ""

    handler.flush()

    assert stream.getvalue() == '{"n": 0}\n{"n": 1}\n{"n": 2}\n'
    assert stream.writes == 1
    handler.flush()  # nothing new: nothing written
    assert stream.writes == 1


def test_a_full_buffer_is_written_without_waiting_for_the_flush() -> None:
    stream = CountingStream()
    handler = BufferedLines(stream, capacity=2)
    for i in range(5):
        handler.handle(record(str(i)))
    assert stream.getvalue() == "0\n1\n2\n3\n"
    assert stream.writes == 2
    handler.close()  # closing flushes what is left
    assert stream.getvalue() == "0\n1\n2\n3\n4\n"


@pytest.fixture
def logger() -> logging.Logger:
    """A logger set up as ``atoll serve`` sets up ``atoll.access``.

    Outside the logging manager's tree: pytest adds its capture handlers to the loggers it knows.
    """
    logger = logging.Logger("atoll.access", logging.INFO)
    logger.propagate = False
    return logger


class Seen(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_a_sole_buffer_gets_the_line_without_a_log_record(logger: logging.Logger) -> None:
    stream = CountingStream()
    buffer = BufferedLines(stream)
    logger.addHandler(buffer)
    made: list[logging.LogRecord] = []
    logger.makeRecord = lambda *args, **kwargs: made.append(None)  # type: ignore[method-assign,assignment,func-returns-value]
    AccessLog(logger).write('{"status": 200}')
    buffer.flush()
    assert stream.getvalue() == '{"status": 200}\n'
    assert made == []  # no LogRecord was built


def test_a_reconfigured_logger_gets_ordinary_records(logger: logging.Logger) -> None:
    """Other handlers, filters or a lower level of the buffer: logging decides, as usual."""
    stream = CountingStream()
    buffer = BufferedLines(stream)
    seen = Seen()
    logger.addHandler(buffer)
    logger.addHandler(seen)
    access = AccessLog(logger)
    access.write("both")
    logger.removeHandler(seen)
    logger.addFilter(lambda record: record.getMessage() != "hidden")
    access.write("hidden")
    access.write("shown")
    buffer.flush()
    assert seen.messages == ["both"]
    assert stream.getvalue() == "both\nshown\n"
    logger.setLevel(logging.WARNING)
    assert not access.enabled


def test_a_buffer_with_filters_or_a_higher_level_gets_records_through_them(
    logger: logging.Logger,
) -> None:
    stream = CountingStream()
    buffer = BufferedLines(stream)
    logger.addHandler(buffer)
    access = AccessLog(logger)
    buffer.addFilter(lambda record: record.getMessage() != "hidden")
    access.write("hidden")
    access.write("shown")
    buffer.filters.clear()
    buffer.setLevel(logging.WARNING)
    access.write("below the level")
    buffer.flush()
    assert stream.getvalue() == "shown\n"
