"""Several edges in front of one control plane share their counters through Redis."""

from __future__ import annotations

import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from launch.serving import bind
from tests.e2e.harness import TEXT_CREATE, Cluster, Process, Simulator, estimate

TASKS = "/api/v3/contents/generations/tasks"
REDIS = "redis://127.0.0.1:6379/0"


def wait_for_key(edge_url: str, key: str) -> None:
    deadline = time.monotonic() + 5
    with httpx.Client(base_url=edge_url, headers={"Authorization": f"Bearer {key}"}) as c:
        while c.get(TASKS, params={"warmup": "1"}).status_code in (401, 503):
            assert time.monotonic() < deadline, "key never reached the edge"
            time.sleep(0.02)


def hammer(urls: list[str], key: str, count: int, create: bool = False) -> list[int]:
    """`count` requests at once, spread over the edges; their statuses."""
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(count)

    def one(n: int) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=urls[n % len(urls)], headers=headers, timeout=10) as c:
            start.wait()
            response = c.post(TASKS, json=TEXT_CREATE) if create else c.get(TASKS)
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return statuses


@pytest.fixture
def prefix() -> Iterator[str]:
    value = f"nextapi-test-{secrets.token_hex(4)}:"
    yield value
    client = redis.Redis.from_url(REDIS)
    for name in client.scan_iter(match=f"{value}*"):
        client.delete(name)
    client.close()


@pytest.fixture
def cluster(tmp_path: Path, simulator: Simulator, prefix: str) -> Iterator[Cluster]:
    c = Cluster(tmp_path, simulator, prefix)
    yield c
    c.stop()


def test_two_edges_enforce_one_rate_limit(cluster: Cluster, prefix: str) -> None:
    if time.time() % 60 > 50:  # sliding-window counters align to the clock's minutes
        time.sleep(61 - time.time() % 60)
    urls = [cluster.edge(REDIS), cluster.edge(REDIS)]
    key = cluster.customer(rate_limit={"requests_per_minute": 12})
    for url in urls:
        wait_for_key(url, key)  # two warm-up requests: 10 left in the window
    statuses = hammer(urls, key, 30)
    assert statuses.count(200) == 10 and statuses.count(429) == 20, statuses
    assert any(name.startswith(prefix.encode()) for name in redis.Redis().scan_iter())


def test_two_edges_enforce_one_concurrency_cap(cluster: Cluster) -> None:
    urls = [cluster.edge(REDIS), cluster.edge(REDIS)]
    key = cluster.customer(rate_limit={"concurrent_tasks": 3})
    for url in urls:
        wait_for_key(url, key)
    statuses = hammer(urls, key, 12, create=True)
    assert statuses.count(200) == 3 and statuses.count(429) == 9, statuses


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, callable]]:
    """A redis-server of the test's own, which it can stop and start again on the same port."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed on this machine")
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    holder: dict[str, Process] = {}

    def start() -> None:
        holder["p"] = Process(
            [
                server,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(tmp_path),
            ]
        )
        holder["p"].wait_for("Ready to accept connections")

    def stop() -> None:
        holder["p"].stop()

    start()
    yield f"redis://127.0.0.1:{port}/0", (start, stop)
    stop()


def test_redis_outage_falls_back_to_local_counters_and_recovers(
    cluster: Cluster, own_redis
) -> None:
    url, (start_redis, stop_redis) = own_redis
    edge = cluster.edge(url, failure="local")
    key = cluster.customer()
    wait_for_key(edge, key)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=edge, headers=headers, timeout=10) as c:
        stop_redis()
        # Redis is gone: the edge keeps serving on its own counters.
        assert [c.get(TASKS).status_code for _ in range(5)] == [200] * 5
        assert c.post(TASKS, json=TEXT_CREATE).status_code == 200
        start_redis()
        # Back on the shared counters once the breaker's cool-down (2 s) is over.
        fresh = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while not list(fresh.scan_iter()):
            assert time.monotonic() < deadline, "edge never returned to Redis"
            assert c.get(TASKS).status_code == 200
            time.sleep(0.1)
        fresh.close()


def test_redis_outage_fails_closed_when_configured(cluster: Cluster, own_redis) -> None:
    url, (_, stop_redis) = own_redis
    edge = cluster.edge(url, failure="closed")
    key = cluster.customer()
    wait_for_key(edge, key)
    stop_redis()
    with httpx.Client(base_url=edge, headers={"Authorization": f"Bearer {key}"}) as c:
        refused = c.get(TASKS)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "ServiceUnavailable"


def test_two_edges_never_overdraw_one_balance(cluster: Cluster) -> None:
    cost = estimate(TEXT_CREATE)
    urls = [cluster.edge(REDIS), cluster.edge(REDIS)]
    key = cluster.customer(credits=cost * 10)
    for url in urls:
        wait_for_key(url, key)
    statuses = hammer(urls, key, 50, create=True)
    assert statuses.count(200) == 10 and statuses.count(402) == 40, statuses
    money = cluster.admin.get(f"/v1/orgs/{cluster.org_id}/balance").json()
    assert money["available"] >= 0 and money["available"] + money["reserved"] == cost * 10
