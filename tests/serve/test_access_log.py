"""The server's log handlers: access lines are written in blocks, each line whole."""

from __future__ import annotations

import io
import logging

from atoll.app import BufferedLines


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
    handler.setFormatter(logging.Formatter("%(message)s"))
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
