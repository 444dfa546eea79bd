"""Running an ASGI app with uvicorn on the current event loop, on a port the OS picks."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import NamedTuple

import uvicorn
from starlette.types import ASGIApp


class _Server(uvicorn.Server):
    """A uvicorn server that leaves the host program's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Served(NamedTuple):
    """A running server: unpack as `server, task, port = await serve(app)`."""

    server: uvicorn.Server
    task: asyncio.Task[None]
    port: int

    async def stop(self) -> None:
        """Shut down gracefully and wait for it (runs the app's lifespan shutdown)."""
        self.server.should_exit = True
        await self.task


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def serve(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    handle_signals: bool = False,
    startup_timeout: float = 10.0,
) -> Served:
    """Start `app` on `host:port` (0 = any free port) as a task on the running loop and return
    once it accepts connections. Signals (SIGINT/SIGTERM) are left to the caller unless
    `handle_signals`. Raises RuntimeError if it cannot start."""
    sock = bind(host, port)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config) if handle_signals else _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + startup_timeout
    try:
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it, if anything
                raise RuntimeError("the server stopped during startup")
            if loop.time() > deadline:
                raise RuntimeError("the server did not start in time")
            await asyncio.sleep(0.01)
    except BaseException:
        server.should_exit = True
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        sock.close()
        raise
    return Served(server, task, sock.getsockname()[1])
