"""Serving a simulator's app on its own (`python -m simulator`, `python -m simulator.stripe`):
the `--listen HOST:PORT` argument, and uvicorn binding the port itself (the simulators import
nothing of the composition root, launch/, which binds the gateway's), printing the one line
`WHAT listening on HOST:PORT` once it accepts connections."""

from __future__ import annotations

import argparse
import socket
from typing import Any

import uvicorn


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


class _AnnouncingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, what: str) -> None:
        super().__init__(config)
        self.what = what

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            host, port = self.config.host, self.servers[0].sockets[0].getsockname()[1]
            shown = f"[{host}]" if ":" in host else host
            print(f"{self.what} listening on {shown}:{port}", flush=True)


async def serve(app: Any, listen: tuple[str, int], what: str) -> None:
    """`app` on `listen` until SIGINT or SIGTERM (uvicorn's handlers)."""
    host, port = listen
    options = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    await _AnnouncingServer(options, what).serve()
