"""The relay's HTTP/1.1 pool against a scripted server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from proxy.upstream.http1 import Http1Pool, ProtocolError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + (await reader.readexactly(length) if length else b"")


async def serve(handler: Handler) -> tuple[asyncio.Server, str, list[bytes]]:
    seen: list[bytes] = []
    connections = 0

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        number = connections
        try:
            await handler(reader, writer, number)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}", seen


def run(coro: Awaitable[None]) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


async def call(pool: Http1Pool, method: str = "GET", body: bytes = b"", wait: float = 2.0):
    return await pool.request(
        method, "/x?q=1", [(b"Accept", b"*/*")], body, connect_timeout=2, read_timeout=wait
    )


def test_content_length_keep_alive_reuses_one_connection() -> None:
    async def scenario() -> None:
        requests: list[bytes] = []

        async def handler(reader, writer, number) -> None:
            while True:
                requests.append(await read_request(reader))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nok")
                await writer.drain()

        server, url, _ = await serve(handler)
        pool = Http1Pool(url)
        for _ in range(3):
            answer = await call(pool)
            assert (answer.status, answer.content) == (200, b"ok")
            assert (b"X-A", b"b") in answer.headers
        assert len(requests) == 3
        assert requests[0].startswith(b"GET /x?q=1 HTTP/1.1\r\nHost: 127.0.0.1:")
        assert len(pool._idle) == 1
        await pool.close()
        server.close()

    run(scenario())


def test_chunked_body_and_connection_close() -> None:
    async def scenario() -> None:
        async def handler(reader, writer, number) -> None:
            await read_request(reader)
            if number == 1:
                writer.write(
                    b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: x\r\n\r\n"
                )
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-eof")
                await writer.drain()
                writer.close()
                return
            await writer.drain()
            await reader.read()

        server, url, _ = await serve(handler)
        pool = Http1Pool(url)
        answer = await call(pool, "POST", b'{"a":1}')
        assert (answer.status, answer.content) == (201, b"abcde")
        pool._idle.clear()  # force the second request onto a new connection
        answer = await call(pool)
        assert answer.content == b"until-eof"
        assert len(pool._idle) == 0  # a closed connection is not pooled
        server.close()

    run(scenario())


def test_stale_pooled_connection_is_replaced_for_get_but_not_for_post() -> None:
    async def scenario() -> None:
        async def handler(reader, writer, number) -> None:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1")
            await writer.drain()
            # Read the next request, then close without answering: a server that timed
            # the connection out just as it was reused.
            await read_request(reader)

        server, url, _ = await serve(handler)
        pool = Http1Pool(url)
        assert (await call(pool)).content == b"1"
        assert (await call(pool)).content == b"1"  # stale → replaced once, transparently
        with pytest.raises(ConnectionError):
            await call(pool, "POST", b"{}")  # never resent: the server may have acted on it
        await pool.close()
        server.close()

    run(scenario())


def test_read_timeout_and_bad_answers() -> None:
    async def scenario() -> None:
        async def handler(reader, writer, number) -> None:
            await read_request(reader)
            if number == 1:
                await asyncio.sleep(5)
            elif number == 2:
                writer.write(b"SMTP ready\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
                writer.close()
                return
            await writer.drain()

        server, url, _ = await serve(handler)
        pool = Http1Pool(url)
        with pytest.raises(TimeoutError):
            await call(pool, wait=0.2)
        with pytest.raises(ProtocolError):
            await call(pool)
        with pytest.raises(asyncio.IncompleteReadError):
            await call(pool)
        assert len(pool._idle) == 0
        server.close()

    run(scenario())


def test_refused_connection_raises_oserror() -> None:
    async def scenario() -> None:
        server, url, _ = await serve(lambda r, w, n: asyncio.sleep(0))
        server.close()
        await server.wait_closed()
        with pytest.raises(OSError):
            await call(Http1Pool(url))

    run(scenario())
