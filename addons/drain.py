"""Knows which requests are in flight, so a stopping edge answers them before it exits.

Once draining, every answer carries `Connection: close`: a keep-alive client opens its next
connection elsewhere (another worker, or the edge after its restart) instead of sending a
request on a connection about to close.
"""

from __future__ import annotations

import asyncio

from mitmproxy import http


class Drain:
    def __init__(self) -> None:
        self.in_flight: set[str] = set()
        self.handled = 0  # requests answered (or abandoned by their client) since start
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self.in_flight.add(flow.id)
        self._idle.clear()

    def response(self, flow: http.HTTPFlow) -> None:
        if self.draining and flow.response is not None:
            flow.response.headers["connection"] = "close"
        self._finished(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._finished(flow)

    def _finished(self, flow: http.HTTPFlow) -> None:
        if flow.id in self.in_flight:
            self.in_flight.discard(flow.id)
            self.handled += 1
            if not self.in_flight:
                self._idle.set()

    async def idle(self) -> None:
        """Returns once no request is in flight."""
        await self._idle.wait()
