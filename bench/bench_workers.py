"""`--workers 2` against `--workers 1`, side by side, both on Redis counters, against the same
upstream that answers from memory, loaded by `wrk` (a load generator that costs little CPU).

    .venv/bin/python bench/bench_workers.py [--seconds 8] [--connections 32]

Needs `wrk`: `apt-get install wrk` (Debian). Uses the machine's Redis under a key prefix of its
own, deleted after. Prints requests/s and the CPU seconds per 1,000 requests of each gateway's
whole process tree (supervisor, control plane, workers; read from /proc), and ends with
`RESULT ratio=… cpu_per_1k_w1=… cpu_per_1k_w2=…`. On a machine shared with other work the
absolute numbers move from run to run; the ratio is measured in one run.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_relay import PY, TASK_PATH, TICKS, start_gateway, tree_cpu_seconds  # noqa: E402
from tests.e2e.harness import Process, address  # noqa: E402

REDIS = "redis://127.0.0.1:6379/0"


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    total = sum(fields[:8])  # guest time is already inside user
    return (total - idle) / TICKS, total / TICKS


def wrk(port: int, key: str, connections: int, seconds: float) -> float:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "-H",
            f"Authorization: Bearer {key}",
            f"http://127.0.0.1:{port}{TASK_PATH}",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"the gateway refused requests under load:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def measure(
    gateway: Process, port: int, key: str, conns: int, seconds: float
) -> tuple[float, float, float, float]:
    """(requests/s, CPU seconds per 1,000 requests, cores the gateway kept busy, cores the
    whole machine kept busy): when the machine is already near all of its cores with one
    worker, a second has none to gain."""
    before = tree_cpu_seconds(gateway.proc.pid)
    busy_before, total_before = machine_cpu()
    rps = wrk(port, key, conns, seconds)
    busy_after, total_after = machine_cpu()
    used = tree_cpu_seconds(gateway.proc.pid) - before
    cores = os.cpu_count() or 1
    wall = (total_after - total_before) / cores
    machine = (busy_after - busy_before) / wall
    return rps, used / (rps * seconds) * 1000, used / wall, machine


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=int, default=8)
    p.add_argument("--connections", type=int, default=32)
    args = p.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (Debian's package)")
    prefix = f"nextapi-bench-{secrets.token_hex(4)}:"
    env = {"NEXTAPI_REDIS_PREFIX": prefix, "NEXTAPI_REDIS_FAILURE": "closed"}

    upstream = Process([PY, str(ROOT / "bench" / "upstream.py")])
    upstream_url = address(upstream, "upstream")
    dirs = [tempfile.TemporaryDirectory(), tempfile.TemporaryDirectory()]
    gateways = []
    try:
        for n, tmp in zip((1, 2), dirs, strict=True):
            gateways.append(
                start_gateway(
                    upstream_url,
                    Path(tmp.name),
                    "--workers",
                    str(n),
                    "--redis-url",
                    REDIS,
                    env=env,
                )
            )
        (one, one_port, one_key), (two, two_port, two_key) = gateways
        wrk(one_port, one_key, args.connections, 1)  # warm-up: connections, caches
        wrk(two_port, two_key, args.connections, 1)
        rps1, cpu1, gw1, all1 = measure(one, one_port, one_key, args.connections, args.seconds)
        rps2, cpu2, gw2, all2 = measure(two, two_port, two_key, args.connections, args.seconds)
        ratio = rps2 / rps1
        heads = ("workers", "req/s", "CPU s / 1k req", "gateway cores", "machine cores")
        print(" ".join(f"{h:>{w}}" for h, w in zip(heads, (7, 8, 15, 14, 14), strict=True)))
        print(f"{1:>7} {rps1:>8.0f} {cpu1:>15.3f} {gw1:>14.2f} {all1:>14.2f}")
        print(f"{2:>7} {rps2:>8.0f} {cpu2:>15.3f} {gw2:>14.2f} {all2:>14.2f}")
        print(f"cores: {os.cpu_count()}; load average before the end: {os.getloadavg()[0]:.2f}")
        print(
            f"RESULT ratio={ratio:.2f} cpu_per_1k_w1={cpu1:.3f} cpu_per_1k_w2={cpu2:.3f} "
            f"machine_busy_w1={all1:.2f} machine_busy_w2={all2:.2f}"
        )
    finally:
        for gateway, _, _ in gateways:
            gateway.stop()
        upstream.stop()
        for tmp in dirs:
            tmp.cleanup()
        client = redis.Redis.from_url(REDIS)
        for name in client.scan_iter(match=f"{prefix}*"):
            client.delete(name)
        client.close()


if __name__ == "__main__":
    main()
