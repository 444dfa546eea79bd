"""The gateway against bare `mitmdump` in reverse mode, side by side, against the same upstream.

    .venv/bin/python bench/bench_relay.py [--seconds 5] [--connections 1,16]

Prints requests/s and latency for each, and the ratios gateway / mitmdump. Absolute numbers
depend on the machine; the ratios, measured in one run, are what to compare.
"""

from __future__ import annotations

import argparse
import json
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
    try:
        print(
            f"{'connections':>11} {'mitmdump rps':>13} {'gateway rps':>12} {'ratio':>6} "
            f"{'mitm p50':>9} {'gw p50':>8} {'mitm p99':>9} {'gw p99':>8}"
        )
        for conns in levels:
            bare = load(mitm_port, "", conns, args.seconds)
            gw = load(edge_port, key, conns, args.seconds)
            assert set(gw["statuses"]) == {"200"}, gw["statuses"]
            ratio = gw["rps"] / bare["rps"]
            print(
                f"{conns:>11} {bare['rps']:>13.0f} {gw['rps']:>12.0f} {ratio:>6.2f} "
                f"{bare['p50_ms']:>9.2f} {gw['p50_ms']:>8.2f} "
                f"{bare['p99_ms']:>9.2f} {gw['p99_ms']:>8.2f}",
                flush=True,
            )
    finally:
        gateway.stop()
        mitmdump.stop()
        upstream.stop()
        data_dir.cleanup()


if __name__ == "__main__":
    main()
