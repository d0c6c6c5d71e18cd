"""A real webhook receiver for the alert tests: an HTTP server on 127.0.0.1 in a thread.

It records every request, answers each with the next status it was told
(200 once the list is empty), or misbehaves as told until it is closed: hangs
without answering, trickles its headers a byte at a time, or follows its status
line with a body that never ends or is cut short.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """What the server answers, and what it received."""

    url: str = ""
    answers: list[int] = field(default_factory=list)
    hang: bool = False
    trickle: str | None = None
    """``status``: trickle the status line before its code; ``headers``: a 200 status line,
    then header bytes one at a time, never ending the headers."""
    body: str = "short"
    """``short``: ``{}``; ``endless``: bytes until the client leaves; ``cut``: fewer bytes
    than its Content-Length promised."""
    reason: str | None = None
    """The reason phrase of the status line (the standard one when ``None``)."""
    requests: list[Received] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)


def verify(secret: bytes, headers: Mapping[str, str], body: bytes) -> bool:
    """What a receiver does with the documented scheme (docs/monitoring.md, "Alerts")."""
    timestamp = headers["X-Atoll-Timestamp"]
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + mac.hexdigest(), headers["X-Atoll-Signature"])


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    """Serve until the block ends; a hanging handler is released first."""
    receiver = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                receiver.requests.append(Received(self.path, dict(self.headers), body))
                status = receiver.answers.pop(0) if receiver.answers else 200
            if receiver.hang:
                receiver.released.wait(60)
                return
            if receiver.trickle is not None:
                start = {"status": b"HTTP/1.1 ", "headers": b"HTTP/1.1 200 OK\r\nX-Slow: "}
                self.wfile.write(start[receiver.trickle])
                self._dribble(b"x")
                return
            self.send_response(status, receiver.reason)
            if 300 <= status < 400:
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            length = {"short": 2, "endless": 10**12, "cut": 1_000}[receiver.body]
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(b"{}")
            if receiver.body == "endless":
                self._dribble(b"x" * 1024)
            self.close_connection = True

        def _dribble(self, chunk: bytes) -> None:
            """Write ``chunk`` every 20 ms until the client leaves or the test ends."""
            try:
                while not receiver.released.wait(0.02):
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except OSError:
                return

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/atoll"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.released.set()
        server.shutdown()
        server.server_close()
        thread.join()
