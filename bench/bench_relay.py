"""The gateway against bare `mitmdump` in reverse mode, side by side, against the same upstream.

    .venv/bin/python bench/bench_relay.py [--seconds 5] [--connections 1,16]

Prints requests/s and latency for each, the ratios gateway / mitmdump, and the CPU seconds per
1,000 requests of each (user + system of the process tree, read from /proc, around each run).
Then it keeps loading the gateway and prints its RSS after 20,000 requests and after
`--rss-requests` (200,000; 0 skips this part). Ends with one line
`RESULT ratio_c1=… ratio_c16=… cpu_per_1k_gateway=… cpu_per_1k_mitmdump=… rss_growth=…`.
Absolute numbers depend on the machine (and on what else runs on it); the ratios, measured in
one run, are what to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import UNLIMITED, Process, address  # noqa: E402

PY = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


TASK_ID = "cgt-20260101000000-bench"  # what bench/upstream.py creates
TASK_PATH = f"/api/v3/contents/generations/tasks/{TASK_ID}"


TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def load_measured(pid: int, port: int, key: str, connections: int, seconds: float) -> dict:
    """`load`, plus the CPU seconds per 1,000 requests of the process tree of `pid`."""
    before = tree_cpu_seconds(pid)
    result = load(port, key, connections, seconds)
    used = tree_cpu_seconds(pid) - before
    result["cpu_per_1k"] = used / (result["requests"] + result["warmup_requests"]) * 1000
    return result


def load(port: int, key: str, connections: int, seconds: float) -> dict:
    out = subprocess.run(
        [
            PY,
            str(ROOT / "bench" / "loadgen.py"),
            "--port",
            str(port),
            "--key",
            key,
            "--connections",
            str(connections),
            "--seconds",
            str(seconds),
            "--path",
            TASK_PATH,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def start_gateway(
    upstream_url: str, data_dir: Path, *flags: str, env: dict[str, str] | None = None
) -> tuple[Process, int, str]:
    """`run_proxy.py` on free ports, with limits that the load never reaches: (process, edge
    port, a customer key)."""
    admin = "nat_bench_" + secrets.token_hex(8)
    gateway = Process(
        [
            PY,
            "run_proxy.py",
            "--listen",
            "127.0.0.1:0",
            "--control-listen",
            "127.0.0.1:0",
            "--data-dir",
            str(data_dir),
            "--upstream",
            upstream_url,
            "--log-level",
            "warning",
            *flags,
        ],
        env={
            "NEXTAPI_UPSTREAM_KEY": "bench-upstream-key",
            "NEXTAPI_ADMIN_TOKEN": admin,
            "NEXTAPI_DEFAULT_RATE_LIMIT": UNLIMITED,
            "NEXTAPI_UPSTREAM_CONCURRENT_TASKS": "1000000",
            **(env or {}),
        },
    )
    control = address(gateway, "control")
    edge_port = int(address(gateway, "edge").rsplit(":", 1)[1])
    with httpx.Client(base_url=control, headers={"Authorization": f"Bearer {admin}"}) as c:
        org = c.post("/v1/orgs", json={"name": "bench", "email": "b@example.com"}).json()
        c.post(f"/v1/orgs/{org['id']}/credits", json={"amount": 10**15})
        key = c.post(f"/v1/orgs/{org['id']}/keys", json={"name": "bench"}).json()["key"]
    # The measured call is a get of the org's own task (relayed, owner checked): create it.
    create = {"model": "seedance-1-0-pro-250528", "content": [{"type": "text", "text": "b"}]}
    edge = f"http://127.0.0.1:{edge_port}/api/v3/contents/generations/tasks"
    created = httpx.post(edge, json=create, headers={"Authorization": f"Bearer {key}"})
    assert created.json()["id"] == TASK_ID, created.text
    return gateway, edge_port, key


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--connections", default="1,16")
    p.add_argument("--rss-requests", type=int, default=200_000)
    args = p.parse_args()
    levels = [int(c) for c in args.connections.split(",")]

    upstream = Process([PY, str(ROOT / "bench" / "upstream.py")])
    upstream_url = address(upstream, "upstream")
    mitm_port = free_port()
    mitmdump = Process(
        [
            str(Path(PY).parent / "mitmdump"),
            "--mode",
            f"reverse:{upstream_url}",
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
            str(mitm_port),
            "--set",
            "connection_strategy=lazy",
            "--set",
            "flow_detail=0",
            "--set",
            "termlog_verbosity=error",
        ]
    )
    wait_port(mitm_port)
    data_dir = tempfile.TemporaryDirectory()
    gateway, edge_port, key = start_gateway(upstream_url, Path(data_dir.name))
    results: list[str] = []
    cpu = {"gateway": [], "mitmdump": []}
    try:
        print(
            f"{'connections':>11} {'mitmdump rps':>13} {'gateway rps':>12} {'ratio':>6} "
            f"{'mitm p50':>9} {'gw p50':>8} {'mitm p99':>9} {'gw p99':>8} "
            f"{'mitm CPU/1k':>12} {'gw CPU/1k':>10}"
        )
        for conns in levels:
            bare = load_measured(mitmdump.proc.pid, mitm_port, "", conns, args.seconds)
            gw = load_measured(gateway.proc.pid, edge_port, key, conns, args.seconds)
            assert set(gw["statuses"]) == {"200"}, gw["statuses"]
            ratio = gw["rps"] / bare["rps"]
            cpu["mitmdump"].append(bare["cpu_per_1k"])
            cpu["gateway"].append(gw["cpu_per_1k"])
            print(
                f"{conns:>11} {bare['rps']:>13.0f} {gw['rps']:>12.0f} {ratio:>6.2f} "
                f"{bare['p50_ms']:>9.2f} {gw['p50_ms']:>8.2f} "
                f"{bare['p99_ms']:>9.2f} {gw['p99_ms']:>8.2f} "
                f"{bare['cpu_per_1k']:>12.3f} {gw['cpu_per_1k']:>10.3f}",
                flush=True,
            )
            results.append(f"ratio_c{conns}={ratio:.2f}")
        for name in ("gateway", "mitmdump"):
            results.append(f"cpu_per_1k_{name}={sum(cpu[name]) / len(cpu[name]):.3f}")
        if args.rss_requests:
            results.append(rss_run(gateway.proc.pid, edge_port, key, args.rss_requests))
    finally:
        gateway.stop()
        mitmdump.stop()
        upstream.stop()
        data_dir.cleanup()
    print("RESULT " + " ".join(results), flush=True)


def rss_run(pid: int, port: int, key: str, total: int) -> str:
    """The gateway's RSS after 20,000 requests and after `total`: it must not grow with
    traffic (no flow retention, no per-request state left behind)."""
    done, marks = 0, {}
    for mark in (20_000, total):
        while done < mark:
            result = load(port, key, 16, 10)
            assert set(result["statuses"]) == {"200"}, result["statuses"]
            done += result["requests"] + result["warmup_requests"]
        marks[mark] = rss_mib(pid)
        print(f"gateway RSS after {done} requests: {marks[mark]:.1f} MiB", flush=True)
    return f"rss_growth={marks[total] / marks[20_000]:.3f}"


if __name__ == "__main__":
    main()
