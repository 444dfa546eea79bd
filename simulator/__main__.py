"""`python -m simulator --listen 127.0.0.1:0 …`: run the Seedance simulator until SIGINT/SIGTERM.

Prints exactly one line, `simulator listening on HOST:PORT`, once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys

import uvicorn

from simulator.app import create_app
from simulator.config import SimulatorConfig


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    p.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 0), metavar="HOST:PORT")
    p.add_argument("--api-key-env", metavar="NAME", help="require the API key in this env var")
    p.add_argument("--queued-seconds", type=float, default=1.0)
    p.add_argument("--running-seconds", type=float, default=2.0)
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fail-tasks", action="store_true")
    return p


class _AnnouncingServer(uvicorn.Server):
    """uvicorn binding the port itself (the simulator imports nothing of the composition root,
    launch/, which binds the gateway's), and printing the one line once it accepts connections."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            host, port = self.config.host, self.servers[0].sockets[0].getsockname()[1]
            shown = f"[{host}]" if ":" in host else host
            print(f"simulator listening on {shown}:{port}", flush=True)


async def run(args: argparse.Namespace, config: SimulatorConfig) -> None:
    host, port = args.listen
    app = create_app(config)
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
    await _AnnouncingServer(options).serve()  # until SIGINT or SIGTERM (uvicorn's handlers)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            print(f"simulator: ${args.api_key_env} is not set", file=sys.stderr)
            return 2
    try:
        config = SimulatorConfig(
            queued_seconds=args.queued_seconds,
            running_seconds=args.running_seconds,
            api_key=api_key,
            error_rate=args.error_rate,
            seed=args.seed,
            latency_ms=args.latency_ms,
            fail_tasks=args.fail_tasks,
        )
    except ValueError as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run(args, config))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
