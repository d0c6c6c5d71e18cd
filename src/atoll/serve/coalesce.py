"""Responses leave at the end of the event loop's turn, each connection's in one write.

A loaded worker answers many connections in one turn of its event loop: a
micro-batch resolves, and every request in it sends its response. uvicorn
writes a response's head and body separately, each ``send()`` a system call
and a TCP segment, and on loopback each one that reaches an idle client runs
the client's wake-up on our core. Measured on the 2-core machine of
docs/benchmarks.md (one worker, 64 connections, one-row predictions): writing
immediately, 4,400-4,900 req/s at 242-275 µs of server CPU per request;
coalesced to the end of the turn, 5,500-7,100 req/s at 168-219 µs.

:class:`CoalescingTransport` wraps a connection's transport: ``write`` keeps
the bytes, and the first write of a turn schedules one callback that hands
every connection's bytes to its transport, joined. Nothing waits longer than
the rest of the turn it was written in; ``close`` writes what is kept first,
so nothing is reordered or lost by closing. The kept bytes of a connection
the client closed are dropped, as the transport itself would drop them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

log = logging.getLogger("atoll.serve")


class _Turn(threading.local):
    """The connections with bytes kept in this turn (each thread runs its own loop)."""

    def __init__(self) -> None:
        self.pending: list[CoalescingTransport] = []


_TURN = _Turn()


def _write_kept() -> None:
    pending, _TURN.pending = _TURN.pending, []
    for transport in pending:
        transport.flush()


class CoalescingTransport(asyncio.Transport):
    """A connection's transport whose writes wait for the end of the loop's turn."""

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self._inner = transport
        self._kept: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._kept:
            pending = _TURN.pending
            if not pending:
                asyncio.get_running_loop().call_soon(_write_kept)
            pending.append(self)
        # a bytearray or view may change after the call; bytes (the usual case) cannot
        self._kept.append(data if type(data) is bytes else bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Hand the kept bytes to the transport now (dropped if it is closing)."""
        kept = self._kept
        if not kept:
            return
        self._kept = []
        if self._inner.is_closing():
            return
        try:
            self._inner.write(kept[0] if len(kept) == 1 else b"".join(kept))
        except (RuntimeError, OSError) as error:  # closed under us: the client is gone
            log.debug("dropped a response to a closed connection: %s", error)

    def close(self) -> None:
        self.flush()
        self._inner.close()

    def abort(self) -> None:
        self._kept = []
        self._inner.abort()

    def write_eof(self) -> None:
        self.flush()
        self._inner.write_eof()

    def can_write_eof(self) -> bool:
        return self._inner.can_write_eof()

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._inner.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._inner.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size() + sum(map(len, self._kept))

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._inner.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._inner.set_write_buffer_limits(high, low)


__all__ = ["CoalescingTransport"]
