"""The listening sockets the edge binds itself: connections accepted on them have Nagle off.

With Nagle on, a keep-alive answer written in two parts waits for the client's delayed ACK:
about 40 ms a request, which capped `--workers 2` below one worker's throughput until the
shared port's socket was made with IPPROTO_TCP (asyncio sets TCP_NODELAY only then). One
function binds them all (launch/serving.py); --workers shares its port with SO_REUSEPORT."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from launch.serving import bind
from launch.workers import reserve_port


@pytest.mark.parametrize(
    "make",
    [lambda: bind("127.0.0.1", 0, reuse_port=True, backlog=8), lambda: bind("127.0.0.1", 0)],
    ids=["workers", "serving"],
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


def test_the_port_reserved_for_workers_is_shared_with_reuse_port_binds_only() -> None:
    held = reserve_port("127.0.0.1:0")
    host, port = held.getsockname()[:2]
    worker = bind(host, port, reuse_port=True, backlog=8)
    try:
        with pytest.raises(OSError):
            bind(host, port)  # a start without SO_REUSEPORT finds the port taken
        assert held.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 0  # never listens
    finally:
        worker.close()
        held.close()
