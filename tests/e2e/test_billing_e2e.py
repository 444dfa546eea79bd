"""Credits through the edge: reservations that can never overdraw, 402s that are not relayed,
settlement exactly once whoever sees the end, and tasks visible only to their owner."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from tests.e2e.harness import TEXT_CREATE, Gateway, Simulator, cost, estimate

TASKS = "/api/v3/contents/generations/tasks"


def client(gateway: Gateway, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=gateway.edge_url, headers={"Authorization": f"Bearer {key}"}, timeout=15
    )


def balance(gateway: Gateway, org_id: str) -> dict[str, int]:
    return gateway.admin.get(f"/v1/orgs/{org_id}/balance").json()


def charges(gateway: Gateway, org_id: str, task_id: str) -> list[dict]:
    items = gateway.admin.get(f"/v1/orgs/{org_id}/ledger").json()["items"]
    return [e for e in items if e["kind"] == "charge" and e["task_id"] == task_id]


def wait_for(predicate, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_not_enough_credits_is_402_and_not_relayed(gateway: Gateway, simulator: Simulator) -> None:
    org = gateway.create_org(credits=estimate(TEXT_CREATE) - 1)
    key = gateway.create_key(org["id"])["key"]
    with client(gateway, key) as c:
        refused = c.post(TASKS, params={"probe": "no-credits"}, json=TEXT_CREATE)
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "InsufficientCredits"
    assert refused.headers["x-should-retry"] == "false"
    assert not [r for r in simulator.requests() if "no-credits" in str(r["query"])]
    assert balance(gateway, org["id"]) == {"available": estimate(TEXT_CREATE) - 1, "reserved": 0}


def test_spend_limits_of_org_and_key_are_402(gateway: Gateway, simulator: Simulator) -> None:
    cost = estimate(TEXT_CREATE)
    org = gateway.create_org(spend_limit={"amount": cost * 2, "period": "month"})
    key = gateway.create_key(org["id"], spend_limit={"amount": cost, "period": "day"})["key"]
    other = gateway.create_key(org["id"])["key"]
    with client(gateway, key) as c, client(gateway, other) as o:
        assert c.post(TASKS, json=TEXT_CREATE).status_code == 200
        by_key = c.post(TASKS, params={"probe": "spend-limit"}, json=TEXT_CREATE)
        assert by_key.status_code == 402
        assert by_key.json()["error"]["code"] == "SpendLimitExceeded"
        assert "key" in by_key.json()["error"]["message"]
        assert o.post(TASKS, json=TEXT_CREATE).status_code == 200
        by_org = o.post(TASKS, params={"probe": "spend-limit"}, json=TEXT_CREATE)
        assert by_org.status_code == 402 and "org" in by_org.json()["error"]["message"]
    assert not [r for r in simulator.requests() if "spend-limit" in str(r["query"])]


def test_unknown_model_is_400_and_not_relayed(gateway: Gateway, simulator: Simulator) -> None:
    org = gateway.create_org()
    key = gateway.create_key(org["id"])["key"]
    body = {**TEXT_CREATE, "model": "seedance-9-9-mega-999999"}
    with client(gateway, key) as c:
        refused = c.post(TASKS, params={"probe": "unknown-model"}, json=body)
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "model"
    assert not [r for r in simulator.requests() if "unknown-model" in str(r["query"])]


def test_concurrent_creates_never_overdraw(gateway: Gateway) -> None:
    cost = estimate(TEXT_CREATE)
    org = gateway.create_org(credits=cost * 10)
    key = gateway.create_key(org["id"])["key"]
    statuses: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(50)

    def create() -> None:
        with client(gateway, key) as c:
            barrier.wait()
            status = c.post(TASKS, json=TEXT_CREATE).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=create) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses.count(200) == 10, statuses
    assert statuses.count(402) == 40, statuses
    money = balance(gateway, org["id"])
    assert money["available"] >= 0 and money["available"] + money["reserved"] == cost * 10


def test_settled_exactly_once_by_get_callback_and_reconciler(
    simulator: Simulator, tmp_path: Path
) -> None:
    from tests.e2e.test_quota_e2e import Receiver

    receiver = Receiver()
    gw = Gateway(
        tmp_path / "gw",
        simulator.url,
        simulator.api_key,
        env={"NEXTAPI_PUBLIC_URL": "auto", "NEXTAPI_RECONCILE_INTERVAL": "0.2"},
    )
    try:
        org = gw.create_org(credits=10**9)
        key = gw.create_key(org["id"])["key"]
        registered = gw.admin.post(f"/v1/orgs/{org['id']}/webhooks", json={"url": receiver.url})
        assert registered.status_code == 201
        with client(gw, key) as c:
            task_id = c.post(TASKS, json={**TEXT_CREATE, "callback_url": receiver.url}).json()["id"]
            # Everyone looks: the client polls, the callback arrives, the reconciler polls.
            wait_for(
                lambda: (
                    c.get(f"{TASKS}/{task_id}").json()["status"] == "succeeded"
                    and any(p.get("status") == "succeeded" for p in receiver.posts)
                ),
                "task never ended",
            )
            task = c.get(f"{TASKS}/{task_id}").json()
            time.sleep(0.5)  # two more reconciler rounds, in which nothing may change
        tokens = task["usage"]["completion_tokens"]
        expected = cost(TEXT_CREATE["model"], tokens)
        (charge,) = charges(gw, org["id"], task_id)
        assert charge["amount"] == -expected
        assert balance(gw, org["id"]) == {"available": 10**9 - expected, "reserved": 0}
        tasks = gw.admin.get(f"/v1/orgs/{org['id']}/tasks").json()["items"]
        assert [(t["id"], t["status"], t["charged"]) for t in tasks] == [
            (task_id, "succeeded", expected)
        ]
    finally:
        gw.stop()
        receiver.close()


def test_kill_9_between_reservation_and_settlement(simulator: Simulator, tmp_path: Path) -> None:
    gw = Gateway(
        tmp_path / "gw",
        simulator.url,
        simulator.api_key,
        env={"NEXTAPI_RECONCILE_INTERVAL": "0.2"},
    )
    try:
        org = gw.create_org(credits=10**9)
        key = gw.create_key(org["id"])["key"]
        with client(gw, key) as c:
            task_id = c.post(TASKS, json=TEXT_CREATE).json()["id"]
        assert balance(gw, org["id"])["reserved"] == estimate(TEXT_CREATE)
        gw.process.kill9()  # reserved, assigned, never seen ending
        gw.start()
        wait_for(lambda: charges(gw, org["id"], task_id), "the task was never settled")
        time.sleep(0.5)  # more reconciler rounds: still one charge
        (charge,) = charges(gw, org["id"], task_id)
        assert balance(gw, org["id"]) == {"available": 10**9 + charge["amount"], "reserved": 0}
    finally:
        gw.stop()


def test_tasks_are_visible_only_to_their_org(gateway: Gateway, simulator: Simulator) -> None:
    mine, theirs = gateway.create_org(), gateway.create_org()
    my_key = gateway.create_key(mine["id"])["key"]
    their_key = gateway.create_key(theirs["id"])["key"]
    with client(gateway, my_key) as me, client(gateway, their_key) as them:
        task_id = me.post(TASKS, json=TEXT_CREATE).json()["id"]
        their_task = them.post(TASKS, json=TEXT_CREATE).json()["id"]
        assert me.get(f"{TASKS}/{task_id}").status_code == 200
        for response in (
            them.get(f"{TASKS}/{task_id}"),
            them.delete(f"{TASKS}/{task_id}"),
            them.get(f"{TASKS}/cgt-20990101000000-nope0"),  # missing: the same answer
        ):
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "NotFound"
        listed = [t["id"] for t in them.get(TASKS, params={"page_size": 500}).json()["items"]]
        assert listed == [their_task]
        asked = them.get(TASKS, params={"filter.task_ids": task_id}).json()
        assert asked == {"items": [], "total": 0}
        assert me.get(f"{TASKS}/{task_id}").status_code == 200  # the delete never happened


def test_delete_of_a_finished_task_charges_it_first(gateway: Gateway, simulator: Simulator) -> None:
    org = gateway.create_org(credits=10**9)
    key = gateway.create_key(org["id"])["key"]
    with client(gateway, key) as c:
        task_id = c.post(TASKS, json=TEXT_CREATE).json()["id"]
        upstream = {"Authorization": f"Bearer {simulator.api_key}"}
        wait_for(  # asked upstream directly: the edge has not seen the end
            lambda: (
                simulator.client.get(f"{TASKS}/{task_id}", headers=upstream).json()["status"]
                == "succeeded"
            ),
            "task never ended",
        )
        assert not charges(gateway, org["id"], task_id)
        assert c.delete(f"{TASKS}/{task_id}").status_code == 200  # removes the upstream record
    (charge,) = charges(gateway, org["id"], task_id)
    assert charge["amount"] < 0
    assert balance(gateway, org["id"])["reserved"] == 0


def test_refund_of_a_charge_once(gateway: Gateway) -> None:
    org = gateway.create_org(credits=10**9)
    key = gateway.create_key(org["id"])["key"]
    with client(gateway, key) as c:
        task_id = c.post(TASKS, json=TEXT_CREATE).json()["id"]
        wait_for(lambda: c.get(f"{TASKS}/{task_id}").json()["status"] == "succeeded", "never ended")
    (charge,) = charges(gateway, org["id"], task_id)
    url = f"/v1/orgs/{org['id']}/credits"
    too_much = gateway.admin.post(url, json={"task_id": task_id, "amount": -charge["amount"] + 1})
    assert too_much.status_code == 409
    refunded = gateway.admin.post(url, json={"task_id": task_id, "reason": "bad output"})
    assert refunded.status_code == 201
    assert refunded.json()["balance"]["available"] == 10**9
    assert gateway.admin.post(url, json={"task_id": task_id}).status_code == 409  # only once
    other = gateway.create_org()
    foreign = gateway.admin.post(f"/v1/orgs/{other['id']}/credits", json={"task_id": task_id})
    assert foreign.status_code == 404
    kinds = [e["kind"] for e in gateway.admin.get(f"/v1/orgs/{org['id']}/ledger").json()["items"]]
    assert kinds == ["refund", "charge", "grant"]
