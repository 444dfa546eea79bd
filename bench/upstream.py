"""A deliberately tiny HTTP/1.1 upstream for benchmarks, keep-alive, so that the proxy in front
of it is what gets measured: a POST answers a created task id, anything else one running task."""

from __future__ import annotations

import asyncio
import sys

TASK_ID = "cgt-20260101000000-bench"


def _answer(body: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Request-Id: up-1\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


CREATED = _answer(b'{"id":"%s"}' % TASK_ID.encode())
TASK = _answer(
    b'{"id":"%s","model":"seedance-1-0-pro-250528","status":"running","created_at":1767225600}'
    % TASK_ID.encode()
)


class Upstream(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].lower()
            length = 0
            for line in head.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            self.buffer = self.buffer[end:]
            self.transport.write(CREATED if head.startswith(b"post ") else TASK)


async def main() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Upstream, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"upstream listening on 127.0.0.1:{port}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
