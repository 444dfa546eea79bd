"""The listening sockets the edge binds itself: connections accepted on them have Nagle off.

With Nagle on, a keep-alive answer written in two parts waits for the client's delayed ACK:
about 40 ms a request, which capped `--workers 2` below one worker's throughput until the
shared port's socket was made with IPPROTO_TCP (asyncio sets TCP_NODELAY only then)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from launch.serving import bind
from launch.workers import _reuseport_socket


def _listening_reuseport() -> socket.socket:
    sock = _reuseport_socket("127.0.0.1", 0)
    sock.listen(8)
    return sock


@pytest.mark.parametrize(
    "make", [_listening_reuseport, lambda: bind("127.0.0.1", 0)], ids=["workers", "serving"]
)
def test_accepted_connections_have_nagle_off(make: Callable[[], socket.socket]) -> None:
    async def body() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            conn = writer.get_extra_info("socket")
            accepted.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        sock = make()
        server = await asyncio.start_server(handle, sock=sock)
        host, port = sock.getsockname()[:2]
        _, writer = await asyncio.open_connection(host, port)
        nodelay = await asyncio.wait_for(accepted, 5)
        writer.close()
        server.close()
        await server.wait_closed()
        return nodelay

    assert asyncio.run(body()) != 0
