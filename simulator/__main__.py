"""`python -m simulator --listen 127.0.0.1:0 …`: run the Seedance simulator until SIGINT/SIGTERM.

Prints exactly one line, `simulator listening on HOST:PORT`, once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from simulator.app import create_app
from simulator.config import SimulatorConfig
from simulator.serving import parse_listen, serve


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


async def run(args: argparse.Namespace, config: SimulatorConfig) -> None:
    await serve(create_app(config), args.listen, "simulator")


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
