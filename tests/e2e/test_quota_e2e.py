"""Concurrency caps (released on completion, on failed creates, by the reconciler) and the
per-model caps that protect the shared upstream account."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import TEXT_CREATE, Gateway, Simulator

TASKS = "/api/v3/contents/generations/tasks"


def client(gateway: Gateway, key: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.Client(base_url=gateway.edge_url, headers=headers, timeout=10)


def assert_quota_exceeded(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "QuotaExceeded"
    assert int(response.headers["retry-after"]) >= 1


def wait_until_finished(c: httpx.Client, task_id: str) -> None:
    deadline = time.monotonic() + 10
    while c.get(f"{TASKS}/{task_id}").json()["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, "task never finished"
        time.sleep(0.05)


def test_concurrency_cap_released_when_the_task_ends(gateway: Gateway) -> None:
    org = gateway.create_org()
    key = gateway.create_key(org["id"], rate_limit={"concurrent_tasks": 2})["key"]
    with client(gateway, key) as c:
        first = c.post(TASKS, json=TEXT_CREATE)
        second = c.post(TASKS, json=TEXT_CREATE)
        assert (first.status_code, second.status_code) == (200, 200)
        assert_quota_exceeded(c.post(TASKS, json=TEXT_CREATE))
        # Reads are not creates: they go on working while the cap is full.
        assert c.get(TASKS).status_code == 200
        wait_until_finished(c, first.json()["id"])  # the get that sees the end frees its slot
        assert c.post(TASKS, json=TEXT_CREATE).status_code == 200
        assert_quota_exceeded(c.post(TASKS, json=TEXT_CREATE))


def test_org_concurrency_cap_spans_its_keys(gateway: Gateway) -> None:
    org = gateway.create_org(rate_limit={"concurrent_tasks": 1})
    a = gateway.create_key(org["id"])["key"]
    b = gateway.create_key(org["id"])["key"]
    with client(gateway, a) as ca, client(gateway, b) as cb:
        assert ca.post(TASKS, json=TEXT_CREATE).status_code == 200
        assert_quota_exceeded(cb.post(TASKS, json=TEXT_CREATE))


def test_failed_create_releases_its_slot(gateway: Gateway, simulator: Simulator) -> None:
    org = gateway.create_org()
    key = gateway.create_key(org["id"], rate_limit={"concurrent_tasks": 1})["key"]
    with client(gateway, key) as c:
        simulator.configure(fixed_status=500)
        assert c.post(TASKS, json=TEXT_CREATE).status_code == 502
        simulator.configure(fixed_status=400)
        assert c.post(TASKS, json=TEXT_CREATE).status_code == 400  # upstream refused it
        simulator.configure(fixed_status=None)
        assert c.post(TASKS, json=TEXT_CREATE).status_code == 200
        assert_quota_exceeded(c.post(TASKS, json=TEXT_CREATE))


def test_cancelled_task_releases_its_slot(gateway: Gateway) -> None:
    org = gateway.create_org()
    key = gateway.create_key(org["id"], rate_limit={"concurrent_tasks": 1})["key"]
    with client(gateway, key) as c:
        # A long-queued task (the simulator queues for 0.2 s): cancel it at once.
        created = c.post(TASKS, json=TEXT_CREATE)
        assert created.status_code == 200
        cancelled = c.delete(f"{TASKS}/{created.json()['id']}")
        if cancelled.status_code != 200:  # it had started running: wait for its end instead
            wait_until_finished(c, created.json()["id"])
        assert c.post(TASKS, json=TEXT_CREATE).status_code == 200


def test_reconciler_frees_slots_of_tasks_nobody_polls(simulator: Simulator, tmp_path: Path) -> None:
    gw = Gateway(
        tmp_path / "gw",
        simulator.url,
        simulator.api_key,
        env={"NEXTAPI_RECONCILE_INTERVAL": "0.3"},
    )
    try:
        org = gw.create_org()
        key = gw.create_key(org["id"], rate_limit={"concurrent_tasks": 1})["key"]
        with client(gw, key) as c:
            assert c.post(TASKS, json=TEXT_CREATE).status_code == 200
            assert_quota_exceeded(c.post(TASKS, json=TEXT_CREATE))
            # No get from anyone: the reconciler sees the task end upstream (~0.6 s).
            deadline = time.monotonic() + 10
            while (again := c.post(TASKS, json=TEXT_CREATE)).status_code == 429:
                assert time.monotonic() < deadline, "reconciler never freed the slot"
                time.sleep(0.1)
            assert again.status_code == 200
    finally:
        gw.stop()


def test_company_wide_caps_per_model_and_upstream(simulator: Simulator, tmp_path: Path) -> None:
    model = TEXT_CREATE["model"]
    limits = {model: {"requests_per_minute": 50, "concurrent_tasks": 2}}
    gw = Gateway(
        tmp_path / "gw",
        simulator.url,
        simulator.api_key,
        env={"NEXTAPI_MODEL_LIMITS": json.dumps(limits), "NEXTAPI_UPSTREAM_CONCURRENT_TASKS": "3"},
    )
    try:
        orgs = [gw.create_org() for _ in range(2)]
        keys = [gw.create_key(org["id"])["key"] for org in orgs]
        other_model = {**TEXT_CREATE, "model": "dreamina-seedance-2-0-fast-260128"}
        with client(gw, keys[0]) as a, client(gw, keys[1]) as b:
            assert a.post(TASKS, json=TEXT_CREATE).status_code == 200
            assert b.post(TASKS, json=TEXT_CREATE).status_code == 200
            # The model's cap is shared by every customer...
            assert_quota_exceeded(a.post(TASKS, json=TEXT_CREATE))
            # ...another model still has room, up to the account's own cap of 3.
            assert b.post(TASKS, json=other_model).status_code == 200
            assert_quota_exceeded(b.post(TASKS, json=other_model))
    finally:
        gw.stop()


def test_model_requests_per_minute_cap(simulator: Simulator, tmp_path: Path) -> None:
    if time.time() % 60 > 50:  # sliding-window counters align to the clock's minutes
        time.sleep(61 - time.time() % 60)
    model = TEXT_CREATE["model"]
    gw = Gateway(
        tmp_path / "gw",
        simulator.url,
        simulator.api_key,
        env={"NEXTAPI_MODEL_LIMITS": json.dumps({model: {"requests_per_minute": 2}})},
    )
    try:
        org = gw.create_org()
        key = gw.create_key(org["id"])["key"]
        with client(gw, key) as c:
            assert [c.post(TASKS, json=TEXT_CREATE).status_code for _ in range(2)] == [200, 200]
            refused = c.post(TASKS, json=TEXT_CREATE)
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "RateLimitExceeded"
            assert "model" in refused.json()["error"]["message"]
    finally:
        gw.stop()


@pytest.fixture(autouse=True)
def _simulator_restored(simulator: Simulator):
    yield
    simulator.configure(fixed_status=None)


class Receiver:
    """A customer's callback endpoint: records what it is posted."""

    def __init__(self) -> None:
        import http.server

        self.posts: list[dict] = []
        posts = self.posts

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                posts.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def test_callback_frees_the_slot_and_reaches_the_customer(
    simulator: Simulator, tmp_path: Path
) -> None:
    receiver = Receiver()
    gw = Gateway(
        tmp_path / "gw",
        simulator.url,
        simulator.api_key,
        env={"NEXTAPI_PUBLIC_URL": "auto", "NEXTAPI_RECONCILE_INTERVAL": "1000"},
    )
    try:
        org = gw.create_org()
        key = gw.create_key(org["id"], rate_limit={"concurrent_tasks": 1})["key"]
        registered = gw.admin.post(f"/v1/orgs/{org['id']}/webhooks", json={"url": receiver.url})
        assert registered.status_code == 201
        with client(gw, key) as c:
            created = c.post(TASKS, json={**TEXT_CREATE, "callback_url": receiver.url})
            assert created.status_code == 200
            task_id = created.json()["id"]
            assert_quota_exceeded(c.post(TASKS, json=TEXT_CREATE))
            # Nobody polls and the reconciler sleeps: only the callback can free the slot.
            deadline = time.monotonic() + 10
            while not any(p.get("status") == "succeeded" for p in receiver.posts):
                assert time.monotonic() < deadline, "callback never reached the customer"
                time.sleep(0.05)
            assert c.post(TASKS, json=TEXT_CREATE).status_code == 200
        statuses = [p["status"] for p in receiver.posts if p["id"] == task_id]
        assert statuses[-1] == "succeeded" and "queued" in statuses
        # The upstream was given the edge's ingress, never the customer's URL.
        attempts = simulator.client.get("/_sim/callbacks").json()
        urls = {a["url"] for a in attempts if a["task_id"] == task_id}
        assert urls and all(u.startswith(f"{gw.edge_url}/_nextapi/callbacks/") for u in urls)
        assert receiver.url not in json.dumps(attempts)
    finally:
        gw.stop()
        receiver.close()


def test_forged_callback_is_refused(gateway: Gateway) -> None:
    forged = f"{gateway.edge_url}/_nextapi/callbacks/{'A' * 40}.{'B' * 43}"
    response = httpx.post(forged, json={"id": "cgt-x", "status": "succeeded"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NotFound"
