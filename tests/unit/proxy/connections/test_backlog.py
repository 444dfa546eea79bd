"""`deepen`: an asyncio server listening with asyncio's default backlog (100) holds a burst of
300 connections for it once deepened, while its loop accepts none of them."""

from __future__ import annotations

import asyncio
import socket
import time

from proxy.connections.backlog import deepen
from tests.e2e.test_listen_backlog_e2e import accept_queue

BURST = 300


def test_a_deepened_server_holds_a_burst_its_loop_has_not_accepted() -> None:
    async def main() -> int:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        assert deepen([server]) == 1
        burst = []
        try:
            # Nothing here awaits, so the loop accepts nothing: the kernel holds them all.
            for _ in range(BURST):
                sock = socket.socket()
                sock.setblocking(False)
                try:
                    sock.connect(("127.0.0.1", port))
                except BlockingIOError:
                    pass
                burst.append(sock)
            deadline = time.monotonic() + 10
            while accept_queue(port) < BURST and time.monotonic() < deadline:
                time.sleep(0.01)  # noqa: ASYNC251 (blocking the loop is the point)
            return accept_queue(port)
        finally:
            for sock in burst:
                sock.close()
            server.close()
            await server.wait_closed()

    assert asyncio.run(main()) >= BURST
