"""Each worker's HTTP/1.1 protocol: httptools, Nagle's algorithm off, a cap on request heads.

uvicorn's httptools protocol keeps a request line and headers of any size and
any number of fields (llhttp sets no limit, and uvicorn caps only h11's): a
client could send megabytes of headers, or thousands of fields, per request.
This one answers 431 and closes the connection once a request head passes
``serve.limits.max_header_bytes`` (request line and headers, 16 KiB) or
``serve.limits.max_header_count`` fields (100), the limits of
research/security.md §4. Bytes are counted as they arrive while a head is
incomplete, so memory stays within the cap plus one read; the exact size and
count are checked once the head is complete.

A chunked body may end with trailer fields, which httptools buffers like a
head's (a value of any size) and uvicorn appends to the request's headers,
after the app has read them. Here trailers are held to the same caps, counted
the same way, and dropped: nothing in a prediction request needs them, and
fields that arrive after the app read the headers must not join them.

Nagle's algorithm is off on every connection: with it, uvicorn #3149, every
keep-alive response waited ~40 ms for a delayed ACK. Responses leave at the
end of the event loop's turn, one write per connection
(:mod:`atoll.serve.coalesce`).

Prediction POSTs that :mod:`atoll.serve.lane` can answer skip the ASGI stack:
when such a request's head is complete, a stand-in takes uvicorn's cycle slot
(so pipelined requests queue behind it, and shutdown and a lost connection
reach it), the parser callbacks fill its body, and after the read the lane
answers it, or, if the body needs more reads, uvicorn starts it as any other
request, from the head the parser still holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from atoll.spec_serve import KIB

from .coalesce import CoalescingTransport
from .lane import LaneRequest, PredictLane, lane_of

log = logging.getLogger("atoll.serve")

_FIELD_OVERHEAD = 4  # ": " and CRLF around each header field
_STATUS = b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
_HEADERS = (
    b"content-type: application/json\r\n"
    b"connection: close\r\n"
    b"x-content-type-options: nosniff\r\n"
    b"cache-control: no-store\r\n"
)


class HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a refused head."""


class _LaneCycle:
    """Stands in for uvicorn's cycle while the lane has a request (see atoll.serve.lane).

    uvicorn's parser callbacks fill its body and mark its end; shutdown and a lost
    connection set ``keep_alive`` and ``disconnected`` as they do on a cycle.
    """

    __slots__ = ("body", "disconnected", "keep_alive", "more_body", "request", "response_complete")

    def __init__(self, request: LaneRequest) -> None:
        self.request = request
        self.body = bytearray()
        self.more_body = True
        self.keep_alive = True
        self.disconnected = False
        self.response_complete = False

    @property
    def message_event(self) -> _LaneCycle:
        return self  # uvicorn wakes the app's receive(); nothing here waits on it

    def set(self) -> None:
        return None


class HardenedHttpProtocol(HttpToolsProtocol):
    """See the module docstring; :func:`http_protocol` sets the limits."""

    max_head_bytes: ClassVar[int] = 16 * KIB
    max_header_count: ClassVar[int] = 100

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._in_body = False
        self._head_bytes = 0
        self._after_chunk_header = False  # no body byte since the last chunk's size line
        self._trailer_bytes = 0
        self._trailer_fields = 0
        self._refused = False
        self._lane: PredictLane | None = lane_of(self.app_state)
        self._lane_cycle: _LaneCycle | None = None  # taken by the lane, decided after the read
        super().connection_made(CoalescingTransport(transport))  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if self._refused:  # answered and closing: nothing more is read
            return
        if not self._in_body:
            self._head_bytes += len(data)
        in_trailers = self._in_body and self._after_chunk_header
        super().data_received(data)
        if self._lane_cycle is not None:
            self._lane_go(self._lane_cycle)
        if self._refused:
            return
        if not self._in_body and self._head_bytes > self.max_head_bytes:
            self._refuse_size()
        elif in_trailers and self._after_chunk_header:
            # After a chunk's size line, bytes that bring no body are the last chunk's
            # trailers (a read that also brought body is not counted: at most one read).
            self._trailer_bytes += len(data)
            if self._trailer_bytes > self.max_head_bytes:
                self._refuse(
                    f"the request's trailer fields are over {self.max_head_bytes} bytes",
                    "max_header_bytes",
                )

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_body:
            super().on_header(name, value)
            return
        self._trailer_fields += 1  # a trailer field: counted, then dropped
        if self._trailer_fields > self.max_header_count:
            self._refuse(
                f"the request has over {self.max_header_count} trailer fields", "max_header_count"
            )
            raise HeadTooLarge

    def on_chunk_header(self) -> None:
        self._after_chunk_header = True

    def on_body(self, body: bytes) -> None:
        self._after_chunk_header = False
        super().on_body(body)

    def on_headers_complete(self) -> None:
        self._in_body = True
        read, self._head_bytes = self._head_bytes, 0
        headers = self.headers
        if len(headers) > self.max_header_count:
            self._refuse(
                f"the request has over {self.max_header_count} header fields", "max_header_count"
            )
            raise HeadTooLarge
        if read > self.max_head_bytes:  # the head's reads held more than the cap: measure it
            fields = sum(len(name) + len(value) for name, value in headers)
            if len(self.url) + fields + _FIELD_OVERHEAD * len(headers) > self.max_head_bytes:
                self._refuse_size()
                raise HeadTooLarge
        if self._lane is not None and self._lane_take(self._lane):
            return
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False  # the next bytes begin the next request's head
        self._after_chunk_header = False
        self._trailer_bytes = self._trailer_fields = 0
        super().on_message_complete()

    # ------------------------------------------------------------------ the prediction lane
    def _lane_take(self, lane: PredictLane) -> bool:
        """Whether the lane answers the request whose head just ended (see atoll.serve.lane)."""
        if self.cycle is not None and not self.cycle.response_complete:
            return False  # one before it is being answered: uvicorn queues this one
        parser = self.parser
        if (
            self.pipeline
            or self.expect_100_continue
            or self.root_path
            or parser.get_method() != b"POST"
            or parser.get_http_version() != "1.1"
            or not parser.should_keep_alive()
            or parser.should_upgrade()
        ):
            return False
        limit = self.limit_concurrency
        if limit is not None and max(len(self.connections), len(self.tasks)) >= limit:
            return False  # uvicorn answers 503
        client = self.client[0] if self.client else None
        request = lane.take(self.url, self.headers, client)
        if request is None:
            return False
        self.cycle = self._lane_cycle = _LaneCycle(request)  # type: ignore[assignment]
        return True

    def _lane_go(self, cycle: _LaneCycle) -> None:
        """After a read: answer a request whose body is complete; else give it to ASGI."""
        self._lane_cycle = None
        if self._refused:  # answered 431 and closing
            return
        if cycle.more_body:  # more reads to come: the ASGI path reads and times them
            self.cycle = None  # type: ignore[assignment]  # nothing follows an unfinished body
            HttpToolsProtocol.on_headers_complete(self)  # the head is still the parser's
            self.cycle.body += cycle.body
            self.cycle.message_event.set()
            return
        assert self._lane is not None
        task = self.loop.create_task(self._lane_answer(self._lane, cycle))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    async def _lane_answer(self, lane: PredictLane, cycle: _LaneCycle) -> None:
        def respond(status: int, headers: list[tuple[bytes, bytes]], content: bytes) -> None:
            self._lane_respond(cycle, status, headers, content)

        try:
            await lane.answer(cycle.request, bytes(cycle.body), respond)
        except BaseException:
            if not cycle.response_complete:  # a fault of ours: the client must not wait forever
                log.exception("the prediction lane failed; closing the connection")
                cycle.response_complete = True
                self.transport.close()
            raise

    def _lane_respond(
        self, cycle: _LaneCycle, status: int, headers: list[tuple[bytes, bytes]], content: bytes
    ) -> None:
        """Write a lane answer as uvicorn's cycle writes one, then end the request as it does."""
        close = not cycle.keep_alive or (b"connection", b"close") in headers
        if not cycle.disconnected:
            head = [STATUS_LINE[status]]
            for name, value in (*self.server_state.default_headers, *headers):
                head += (name, b": ", value, b"\r\n")
            if close and (b"connection", b"close") not in headers:  # shutting down meanwhile
                head.append(b"connection: close\r\n")
            head += (b"\r\n", content)
            self.transport.write(b"".join(head))
        cycle.response_complete = True
        if close:
            self.transport.close()
        self.on_response_complete()

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # ours was answered already (431)
            super().send_400_response(msg)

    def _refuse_size(self) -> None:
        self._refuse(f"the request head is over {self.max_head_bytes} bytes", "max_header_bytes")

    def _refuse(self, why: str, setting: str) -> None:
        self._refused = True
        message = f"{why} (serve.limits.{setting})"
        client = self.client[0] if self.client else "?"
        log.warning("refused a request from %s: %s", client, message)
        body = orjson.dumps({"error": {"code": "header_too_large", "message": message}})
        length = b"content-length: %d\r\n\r\n" % len(body)
        self.transport.write(_STATUS + _HEADERS + length + body)
        self.transport.close()


def http_protocol(max_head_bytes: int, max_header_count: int) -> type[HardenedHttpProtocol]:
    """The protocol class with these limits (uvicorn makes one instance per connection)."""
    return type(
        "HardenedHttpProtocol",
        (HardenedHttpProtocol,),
        {"max_head_bytes": max_head_bytes, "max_header_count": max_header_count},
    )
