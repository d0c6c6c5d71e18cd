"""The coalescing transport over real socket pairs, on uvloop as the server runs it."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable

import uvloop

from atoll.serve.coalesce import CoalescingTransport

Body = Callable[[CoalescingTransport, socket.socket], Awaitable[None]]


def run_with_peer(body: Body) -> None:
    """``body(transport, peer)``: our end wrapped, the peer a plain non-blocking socket."""

    async def main() -> None:
        ours, peer = socket.socketpair()
        peer.setblocking(False)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        try:
            await body(CoalescingTransport(transport), peer)  # type: ignore[arg-type]
        finally:
            transport.close()
            peer.close()

    uvloop.run(main())


async def received(peer: socket.socket, size: int = 1 << 16) -> bytes:
    """What one read of the peer returns once something arrived (b"" at end of stream)."""
    loop = asyncio.get_running_loop()
    return await asyncio.wait_for(loop.sock_recv(peer, size), 5)


def nothing_yet(peer: socket.socket) -> bool:
    try:
        peer.recv(1)
    except BlockingIOError:
        return True
    return False


def test_writes_of_one_turn_leave_together_at_its_end_in_order() -> None:
    async def body(transport: CoalescingTransport, peer: socket.socket) -> None:
        changing = bytearray(b"two ")
        transport.write(b"one ")
        transport.write(changing)
        changing[:] = b"XXXX"  # the caller reuses its buffer: what was written stays
        transport.writelines([b"three ", memoryview(b"four")])
        assert transport.get_write_buffer_size() == len(b"one two three four")
        assert nothing_yet(peer)  # kept until the turn ends
        assert await received(peer) == b"one two three four"
        assert transport.get_write_buffer_size() == 0

    run_with_peer(body)


def test_each_turn_sends_what_it_wrote() -> None:
    async def body(transport: CoalescingTransport, peer: socket.socket) -> None:
        for turn in range(3):
            transport.write(b"turn %d;" % turn)
            assert await received(peer) == b"turn %d;" % turn

    run_with_peer(body)


def test_close_sends_what_is_kept_before_the_end_of_stream() -> None:
    async def body(transport: CoalescingTransport, peer: socket.socket) -> None:
        transport.write(b"last words")
        transport.close()
        assert transport.is_closing()
        data = b""
        while chunk := await received(peer):
            data += chunk
        assert data == b"last words"

    run_with_peer(body)


def test_bytes_for_a_connection_that_closed_are_dropped_without_error() -> None:
    async def body(transport: CoalescingTransport, peer: socket.socket) -> None:
        transport.write(b"kept")
        transport.abort()  # the connection is gone before the turn ends
        await asyncio.sleep(0.01)
        transport.write(b"after")  # as a late response would be
        await asyncio.sleep(0.01)
        assert transport.get_write_buffer_size() == 0  # dropped at the end of the turn
        assert await received(peer) == b""  # end of stream, none of the bytes

    run_with_peer(body)


def test_loops_in_other_threads_keep_their_own_turns() -> None:
    """Every thread runs its own loop; one loop's turn never flushes another's bytes."""
    results: dict[int, bytes] = {}

    def worker(n: int) -> None:
        async def body(transport: CoalescingTransport, peer: socket.socket) -> None:
            data = b""
            for i in range(200):
                transport.write(b"%d:%d;" % (n, i))
                if i % 7 == 0:
                    await asyncio.sleep(0)
            while len(data) < len(b"".join(b"%d:%d;" % (n, i) for i in range(200))):
                data += await received(peer)
            results[n] = data

        run_with_peer(body)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for n in range(4):
        assert results[n] == b"".join(b"%d:%d;" % (n, i) for i in range(200))
