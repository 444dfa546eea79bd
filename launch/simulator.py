"""The Seedance simulator served on the process's event loop: --demo's upstream (launch/demo.py)
and the dev proxy's default target (launch/dev.py)."""

from __future__ import annotations

from launch.serving import AppServer
from simulator.app import create_app
from simulator.config import SimulatorConfig


async def start_simulator(
    config: SimulatorConfig, host: str = "127.0.0.1", port: int = 0
) -> AppServer:
    """The simulator accepting connections on `host:port` (port 0: any free port)."""
    server = AppServer(create_app(config), host, port)
    await server.start()
    return server
