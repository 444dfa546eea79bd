"""Running an ASGI app with uvicorn on the current event loop, on a socket bound up front so
that port 0 ("any free port") is resolved before anyone needs to know it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn


def bind(
    host: str, port: int, *, reuse_port: bool = False, backlog: int | None = 2048
) -> socket.socket:
    """A TCP socket bound to `host:port` and listening with `backlog`; `backlog=None`: bound
    only (the supervisor of --workers holds its port so); `reuse_port`: SO_REUSEPORT, so that
    every worker binds the same port and the kernel spreads connections over them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose proto
    # says TCP, and accepted sockets inherit it. With proto 0, every keep-alive answer waited
    # ~40 ms on the peer's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if backlog is not None:
            sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class _QuietServer(uvicorn.Server):
    """Leaves the host program's signal handlers alone (one handler stops everything)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AppServer:
    def __init__(self, app: Any, host: str, port: int, *, handle_signals: bool = False) -> None:
        self.sock = bind(host, port)
        self.host, self.port = self.sock.getsockname()[:2]
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            log_config=None,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config) if handle_signals else _QuietServer(config)
        self.task: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 10.0) -> None:
        """Return once the app accepts connections; raise if it cannot start."""
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        try:
            async with asyncio.timeout(timeout):
                while not self.server.started:
                    if self.task.done():
                        self.task.result()  # raises what stopped it, if anything
                        raise RuntimeError("the server stopped during start-up")
                    await asyncio.sleep(0.01)
        except BaseException:
            await self.stop()
            self.sock.close()
            raise

    async def stop(self) -> None:
        """Shut down gracefully (runs the app's lifespan shutdown) and wait for it."""
        self.server.should_exit = True
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


async def serve(
    app: Any, host: str = "127.0.0.1", port: int = 0, *, handle_signals: bool = False
) -> AppServer:
    """Start `app` as a task on the running loop; the returned server knows its port."""
    server = AppServer(app, host, port, handle_signals=handle_signals)
    await server.start()
    return server
