"""Delivering a generated video: the gateway's own signed link (its copy, streamed from its store)
against bare `mitmdump --mode reverse` relaying the upstream's link, side by side in one run,
with the simulator as the upstream.

    .venv/bin/python bench/bench_videos.py [--megabytes 5] [--seconds 5] [--connections 1,4]

Prints downloads/s, MB/s and latency of whole-file GETs for each, the ratio gateway / mitmdump,
and the gateway's ranged reads (1 MiB, what a seeking player asks for), which the simulator's
own links do not support. Absolute numbers depend on the machine; compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_relay import free_port, wait_port  # noqa: E402
from tests.e2e.harness import UNLIMITED, Process, address  # noqa: E402

PY = sys.executable
TASKS = "/api/v3/contents/generations/tasks"


def load(port: int, path: str, conns: int, seconds: float, byte_range: str = "") -> dict:
    command = [
        PY,
        str(ROOT / "bench" / "loadgen.py"),
        *("--port", str(port), "--path", path, "--connections", str(conns)),
        *("--seconds", str(seconds), "--range", byte_range),
    ]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def gateway_link(simulator_url: str, upstream_key: str, data_dir: Path) -> tuple[Process, str]:
    """A gateway in front of the simulator, one succeeded task: (process, its video's link)."""
    admin = "nat_bench_" + secrets.token_hex(8)
    gateway = Process(
        [
            PY,
            "run_proxy.py",
            *("--listen", "127.0.0.1:0", "--control-listen", "127.0.0.1:0"),
            *("--data-dir", str(data_dir), "--upstream", simulator_url, "--log-level", "warning"),
        ],
        env={
            "NEXTAPI_UPSTREAM_KEY": upstream_key,
            "NEXTAPI_ADMIN_TOKEN": admin,
            "NEXTAPI_DEFAULT_RATE_LIMIT": UNLIMITED,
            "NEXTAPI_PUBLIC_URL": "auto",
        },
    )
    control, edge = address(gateway, "control"), address(gateway, "edge")
    with httpx.Client(base_url=control, headers={"Authorization": f"Bearer {admin}"}) as c:
        org = c.post("/v1/orgs", json={"name": "bench", "email": "b@example.com"}).json()
        c.post(f"/v1/orgs/{org['id']}/credits", json={"amount": 10**15})
        key = c.post(f"/v1/orgs/{org['id']}/keys", json={"name": "bench"}).json()["key"]
    create = {"model": "seedance-1-0-pro-250528", "content": [{"type": "text", "text": "b"}]}
    with httpx.Client(base_url=edge, headers={"Authorization": f"Bearer {key}"}) as c:
        task_id = c.post(TASKS, json=create).json()["id"]
        deadline = time.monotonic() + 30
        while (task := c.get(f"{TASKS}/{task_id}", timeout=60).json())["status"] != "succeeded":
            assert time.monotonic() < deadline, task
            time.sleep(0.05)
    return gateway, task["content"]["video_url"]


def row(label: str, result: dict, size: int) -> str:
    megabytes = result["rps"] * size / 1e6
    return (
        f"{label:<28} {result['rps']:>9.1f} {megabytes:>8.1f} "
        f"{result['p50_ms']:>9.2f} {result['p99_ms']:>9.2f}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--megabytes", type=float, default=5.0)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--connections", default="1,4")
    args = p.parse_args()
    size = int(args.megabytes * 2**20)
    key = "sim_" + secrets.token_hex(8)
    simulator = Process(
        [PY, "-m", "simulator", "--listen", "127.0.0.1:0", "--api-key-env", "SIM_KEY"],
        env={"SIM_KEY": key},
    )
    simulator_url = address(simulator, "simulator")
    httpx.patch(
        f"{simulator_url}/_sim/config",
        json={"video_bytes": size, "queued_seconds": 0, "running_seconds": 0},
    ).raise_for_status()
    mitm_port = free_port()
    mitmdump = Process(
        [
            str(Path(PY).parent / "mitmdump"),
            *("--mode", f"reverse:{simulator_url}", "--listen-host", "127.0.0.1"),
            *("--listen-port", str(mitm_port), "--set", "connection_strategy=lazy"),
            *("--set", "flow_detail=0", "--set", "termlog_verbosity=error"),
        ]
    )
    wait_port(mitm_port)
    data_dir = tempfile.TemporaryDirectory()
    gateway, link = gateway_link(simulator_url, key, Path(data_dir.name))
    link_url = httpx.URL(link)
    gateway_port, gateway_path = link_url.port, link_url.raw_path.decode()
    task_id = gateway_path.split("/")[3]
    upstream_path = f"/_sim/videos/{task_id}.mp4"
    try:
        print(f"whole {size / 2**20:.1f} MiB video per GET; ranged reads of 1 MiB")
        print(f"{'':<28} {'GET/s':>9} {'MB/s':>8} {'p50 ms':>9} {'p99 ms':>9}")
        for conns in (int(c) for c in args.connections.split(",")):
            bare = load(mitm_port, upstream_path, conns, args.seconds)
            ours = load(gateway_port, gateway_path, conns, args.seconds)
            assert set(ours["statuses"]) == {"200"}, ours["statuses"]
            assert set(bare["statuses"]) == {"200"}, bare["statuses"]
            ranged = load(gateway_port, gateway_path, conns, args.seconds, "bytes=1048576-2097151")
            assert set(ranged["statuses"]) == {"206"}, ranged["statuses"]
            print(row(f"{conns} conn: mitmdump, upstream", bare, size))
            print(row(f"{conns} conn: gateway, its copy", ours, size))
            print(row(f"{conns} conn: gateway, 1 MiB range", ranged, 2**20))
            print(
                f"{conns} conn: ratio gateway / mitmdump (whole file): "
                f"{ours['rps'] / bare['rps']:.2f}",
                flush=True,
            )
    finally:
        gateway.stop()
        mitmdump.stop()
        simulator.stop()
        data_dir.cleanup()


if __name__ == "__main__":
    main()
