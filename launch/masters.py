"""A mitmproxy master on the process's event loop, the edge's and the dev proxy's alike: where it
listens once it runs, waiting on something unless the master stops first, and stopping it."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from mitmproxy import ctx, master

from addons.drain import Drain


class ListenReporter:
    """Notes where the master listens once it runs (port 0 resolves here), or why one of its
    servers could not start (mitmproxy only logs that and carries on); `listening` then says
    so, each process in its own words."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.address: tuple[str, int] | None = None
        self.failure: str | None = None

    def running(self) -> None:
        server: Any = ctx.master.addons.get("proxyserver")
        instances = list(server.servers)
        broken = [i for i in instances if not i.is_running]
        if not instances or broken:
            reason = str(broken[0].last_exception) if broken else "no server started"
            self.failure = reason.split("\n\nStack backtrace")[0].strip()  # the Rust part's trace
        else:
            addresses = server.listen_addrs()  # none in local mode: it captures, not listens
            if addresses:
                host, port = addresses[0][:2]
                self.address = (host, port)
            self.listening(server)
        self.ready.set()

    def listening(self, server: Any) -> None:
        """Called once every server runs, `self.address` known."""


async def first(awaitable: Any, master_task: asyncio.Task[None], what: str) -> None:
    """Wait for `awaitable`, unless the master (`what` names it) stops first: its error is
    raised, or the process exits saying it stopped."""
    waiter = asyncio.ensure_future(awaitable)
    await asyncio.wait({waiter, master_task}, return_when=asyncio.FIRST_COMPLETED)
    if not waiter.done():
        waiter.cancel()
        master_task.result()
        raise SystemExit(f"{what} stopped unexpectedly")


async def stop_master(
    running: master.Master,
    task: asyncio.Task[None],
    drain: Drain | None = None,
    grace: float = 0.0,
) -> None:
    """Stop; with a `drain`, first stop accepting and answer the requests in flight (for at
    most `grace` seconds)."""
    if drain is not None and not task.done():
        drain.draining = True
        server: Any = running.addons.get("proxyserver")
        with contextlib.suppress(Exception):
            await server.servers.update([])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(drain.idle(), grace)
        # The last answers' bytes are handed to their sockets a few loop turns after the
        # hooks finish.
        await asyncio.sleep(0.1)
    running.shutdown()
    with contextlib.suppress(asyncio.CancelledError):
        await task
