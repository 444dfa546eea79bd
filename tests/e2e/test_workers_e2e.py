"""`--workers 2`: two edge processes on one port, sharing Redis counters and one control plane."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from control.store import requestlog
from tests.e2e.harness import ROOT, TEXT_CREATE, Gateway, Simulator
from tests.e2e.test_shared_e2e import hammer, wait_for_key

TASKS = "/api/v3/contents/generations/tasks"
REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def prefix() -> Iterator[str]:
    value = f"nextapi-test-{secrets.token_hex(4)}:"
    yield value
    client = redis.Redis.from_url(REDIS)
    for name in client.scan_iter(match=f"{value}*"):
        client.delete(name)
    client.close()


def start_workers(simulator: Simulator, data_dir: Path, prefix: str) -> Gateway:
    return Gateway(
        data_dir,
        simulator.url,
        simulator.api_key,
        "--workers",
        "2",
        "--redis-url",
        REDIS,
        env={"NEXTAPI_REDIS_PREFIX": prefix, "NEXTAPI_REDIS_FAILURE": "closed"},
    )


@pytest.fixture(scope="module")
def workers(
    simulator: Simulator, tmp_path_factory: pytest.TempPathFactory, prefix: str
) -> Iterator[Gateway]:
    """Shared by the tests that leave it running (each uses an org of its own)."""
    gw = start_workers(simulator, tmp_path_factory.mktemp("workers"), prefix)
    yield gw
    gw.stop()


@pytest.fixture
def own_workers(simulator: Simulator, tmp_path: Path, prefix: str) -> Iterator[Gateway]:
    gw = start_workers(simulator, tmp_path / "gateway", prefix)
    yield gw
    gw.stop()


def worker_pid(gw: Gateway, number: int, not_pid: int | None = None) -> int:
    avoid = rf"(?!{not_pid}$)" if not_pid else ""
    return int(gw.process.wait_for(rf"^worker {number} pid {avoid}(\d+)$").group(1))


def worker_metrics(gw: Gateway, number: int) -> dict[str, int]:
    path = gw.data_dir / "workers" / str(number) / "metrics.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def metrics(gw: Gateway) -> dict[str, int]:
    text = httpx.get(f"{gw.control_url}/metrics").raise_for_status().text
    return {
        name: int(value) for name, value in re.findall(r"^(\w+) (\d+)$", text, flags=re.MULTILINE)
    }


def wait_until(predicate, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_more_workers_than_one_need_redis(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "run_proxy.py", "--workers", "2", "--data-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NEXTAPI_UPSTREAM_KEY": "k"},
        timeout=60,
    )
    assert result.returncode != 0
    assert "--workers 2 needs --redis-url" in result.stderr
    assert "counted per worker" in result.stderr


def test_one_rate_limit_is_exact_across_both_workers(workers: Gateway) -> None:
    if time.time() % 60 > 50:  # sliding-window counters align to the clock's minutes
        time.sleep(61 - time.time() % 60)
    org = workers.create_org()
    key = workers.create_key(org["id"], rate_limit={"requests_per_minute": 12})["key"]
    wait_for_key(workers.edge_url, key)  # one warm-up request: 11 left
    statuses = hammer([workers.edge_url], key, 40)  # 40 new connections, over both workers
    assert statuses.count(200) == 11 and statuses.count(429) == 29, statuses
    # Both workers served, and /metrics counts the requests of both.
    wait_until(
        lambda: metrics(workers).get("nextapi_edge_requests_total", 0) >= 41,
        "both workers' requests in /metrics",
    )
    served = [worker_metrics(workers, n).get("nextapi_edge_requests_total", 0) for n in (1, 2)]
    assert all(count > 0 for count in served), served
    assert metrics(workers)["nextapi_workers"] == 2


def test_kill_9_of_a_worker_loses_no_acknowledged_create_and_it_restarts(
    workers: Gateway,
) -> None:
    org = workers.create_org(credits=10**12)
    key = workers.create_key(org["id"])["key"]
    first = worker_pid(workers, 1)
    answered: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load() -> None:
        headers = {"Authorization": f"Bearer {key}"}
        while not stop.is_set():
            # A new connection each time, so the kernel spreads them over both workers.
            try:
                response = httpx.post(
                    f"{workers.edge_url}{TASKS}", json=TEXT_CREATE, headers=headers, timeout=10
                )
            except httpx.HTTPError:
                continue  # this worker died under us: that answer was never seen
            if response.status_code == 200:
                with lock:
                    answered.append(response.headers["x-request-id"])

    def count() -> int:
        with lock:
            return len(answered)

    threads = [threading.Thread(target=load) for _ in range(6)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: count() >= 40, "40 creates before the kill", 60)
        wait_until(
            lambda: worker_metrics(workers, 1).get("nextapi_edge_requests_total", 0) > 0,
            "worker 1 serving",
        )
        os.kill(first, signal.SIGKILL)
        second = worker_pid(workers, 1, not_pid=first)  # restarted by the supervisor
        assert second != first
        before = count()
        wait_until(lambda: count() >= before + 40, "40 creates after the restart", 60)
        # The restarted worker serves again (new connections reach it).
        wait_until(
            lambda: worker_metrics(workers, 1).get("nextapi_edge_requests_total", 0) > 0,
            "the restarted worker serving",
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(20)
    seen = set(answered)
    missing = seen - workers.wait_for_request_ids(org["id"], seen, timeout=60)
    assert not missing, f"{len(missing)} of {len(seen)} acknowledged creates have no record"
    assert metrics(workers)["nextapi_worker_restarts_total"] == 1


def test_sigterm_answers_requests_in_flight_and_loses_no_record(
    own_workers: Gateway, simulator: Simulator
) -> None:
    """SIGTERM while 8 creates wait on a slow upstream: all 8 answered, all 8 recorded."""
    org = own_workers.create_org(credits=10**12)
    key = own_workers.create_key(org["id"])["key"]
    wait_for_key(own_workers.edge_url, key)
    simulator.configure(latency_ms=1500)
    statuses: list[int] = []
    ids: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        headers = {"Authorization": f"Bearer {key}"}
        response = httpx.post(
            f"{own_workers.edge_url}{TASKS}", json=TEXT_CREATE, headers=headers, timeout=30
        )
        with lock:
            statuses.append(response.status_code)
            ids.append(response.headers["x-request-id"])

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    in_flight = [0]

    def all_in_flight() -> bool:
        in_flight[0] = sum(
            worker_metrics(own_workers, n).get("nextapi_edge_requests_in_flight", 0) for n in (1, 2)
        )
        return in_flight[0] == 8

    wait_until(all_in_flight, "8 creates in flight at the workers")
    own_workers.admin.close()
    code = own_workers.process.stop(signal.SIGTERM, timeout=60)
    for thread in threads:
        thread.join(30)
    assert code == 0, own_workers.process.output()[-2000:]
    assert statuses == [200] * 8, statuses
    # Every record reached the control plane's SQLite before it stopped, none left to replay.
    with sqlite3.connect(requestlog.log_path(own_workers.data_dir)) as db:
        stored = {row[0] for row in db.execute("SELECT request_id FROM usage")}
    assert set(ids) <= stored, set(ids) - stored


def test_the_hold_sweep_runs_beside_the_workers(workers: Gateway) -> None:
    """The workers are edges apart: their supervisor's control plane sweeps stale holds (and
    scans the upstream for the tasks of creates no worker answered) as role control does."""

    def scanned() -> bool:
        system = workers.admin.get("/v1/system").raise_for_status().json()
        return system["orphans"]["checked_at"] is not None

    wait_until(scanned, "a hold sweep's scan in GET /v1/system")
