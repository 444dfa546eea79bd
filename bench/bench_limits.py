"""The edge with its counters in Redis against the edge with `memory://` counters, side by side,
against the same minimal upstream: the cost of sharing limits between edges.

    .venv/bin/python bench/bench_limits.py [--seconds 5] [--connections 1,16] [--rounds 3]

Each round loads the memory edge, then the Redis edge (alternating which goes first), so that a
change in the machine's other load reaches both; the ratio reported is the median of the
rounds'. Also prints the CPU seconds per 1,000 requests of each edge's process tree (from
/proc), steadier than requests/s on a shared machine. Ends with `RESULT ratio_c1=… ratio_c16=…`
(edge on Redis ÷ edge on memory). Uses the machine's Redis (redis://127.0.0.1:6379/0) under a
key prefix of its own, deleted after.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_relay import PY, load_measured, start_gateway  # noqa: E402
from tests.e2e.harness import Process, address  # noqa: E402

REDIS = "redis://127.0.0.1:6379/0"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--connections", default="1,16")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    levels = [int(c) for c in args.connections.split(",")]
    prefix = f"nextapi-bench-{secrets.token_hex(4)}:"

    upstream = Process([PY, str(ROOT / "bench" / "upstream.py")])
    upstream_url = address(upstream, "upstream")
    memory_dir, redis_dir = tempfile.TemporaryDirectory(), tempfile.TemporaryDirectory()
    memory, memory_port, memory_key = start_gateway(upstream_url, Path(memory_dir.name))
    shared, shared_port, shared_key = start_gateway(
        upstream_url,
        Path(redis_dir.name),
        "--redis-url",
        REDIS,
        env={"NEXTAPI_REDIS_PREFIX": prefix, "NEXTAPI_REDIS_FAILURE": "closed"},
    )
    results: list[str] = []
    try:
        print(
            f"{'connections':>11} {'memory rps':>11} {'redis rps':>10} {'ratio':>6} "
            f"{'mem p50':>8} {'redis p50':>10} {'mem CPU/1k':>11} {'redis CPU/1k':>13}"
        )
        edges = {
            "memory": (memory, memory_port, memory_key),
            "redis": (shared, shared_port, shared_key),
        }
        for conns in levels:
            ratios = []
            for round_ in range(args.rounds):
                order = ["memory", "redis"] if round_ % 2 == 0 else ["redis", "memory"]
                seen = {}
                for name in order:
                    process, port, key = edges[name]
                    seen[name] = load_measured(process.proc.pid, port, key, conns, args.seconds)
                local, remote = seen["memory"], seen["redis"]
                # failure=closed: a 503 would mean Redis was not used; every answer must be 200.
                assert set(remote["statuses"]) == {"200"}, remote["statuses"]
                ratio = remote["rps"] / local["rps"]
                ratios.append(ratio)
                print(
                    f"{conns:>11} {local['rps']:>11.0f} {remote['rps']:>10.0f} {ratio:>6.2f} "
                    f"{local['p50_ms']:>8.2f} {remote['p50_ms']:>10.2f} "
                    f"{local['cpu_per_1k']:>11.3f} {remote['cpu_per_1k']:>13.3f}",
                    flush=True,
                )
            results.append(f"ratio_c{conns}={statistics.median(ratios):.2f}")
    finally:
        memory.stop()
        shared.stop()
        upstream.stop()
        memory_dir.cleanup()
        redis_dir.cleanup()
        client = redis.Redis.from_url(REDIS)
        for name in client.scan_iter(match=f"{prefix}*"):
            client.delete(name)
        client.close()
    print("RESULT " + " ".join(results), flush=True)


if __name__ == "__main__":
    main()
