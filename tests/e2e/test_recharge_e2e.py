"""The low-balance alert and auto-recharge, end to end: settlements of real tasks take an org's
balance under its threshold; the org's endpoint gets one signed `balance.low` event per
crossing, and with auto-recharge the card its checkout saved is charged once (one off-session
PaymentIntent at the Stripe simulator), even when 50 settlements cross together; a declined
recharge is one `balance.recharge_failed` event and no retry."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.e2e.harness import TEXT_CREATE, Gateway, Receiver, Simulator, estimate
from tests.e2e.payments import (
    TASKS,
    balance,
    checkout,
    paid_gateway,
    put_pack,
    wait_until,
)
from tests.e2e.stripe_sim import StripeSimulator

TEN_CREDITS = 10_000_000


@pytest.fixture(scope="module")
def gw(
    simulator: Simulator, stripe_sim: StripeSimulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    gateway = paid_gateway(tmp_path_factory.mktemp("recharge"), simulator, stripe_sim)
    put_pack(gateway, "ten", TEN_CREDITS, 300)
    put_pack(gateway, "crumb", 1, 50)  # one micro-credit: a recharge that never re-arms
    yield gateway
    gateway.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


def org_with_saved_card(gw: Gateway, stripe_sim: StripeSimulator, receiver: Receiver) -> tuple:
    """An org that bought the ten-credit pack keeping its card, with an endpoint for its
    balance events; returns the org, a key and the endpoint's secret."""
    org = gw.create_org(credits=0)
    session = checkout(gw, org["id"], "ten", save_card=True)
    assert stripe_sim.pay(session["id"]).status_code == 303
    wait_until(lambda: balance(gw, org["id"])["available"] == TEN_CREDITS, "never granted")
    hook = gw.admin.post(
        f"/v1/orgs/{org['id']}/webhooks",
        json={"url": receiver.url, "events": ["balance.low", "balance.recharge_failed"]},
    )
    assert hook.status_code == 201, hook.text
    return org, gw.create_key(org["id"])["key"], hook.json()["secret"]


def set_low_balance(gw: Gateway, org_id: str, **body: Any) -> dict[str, Any]:
    answer = gw.admin.put(f"/v1/orgs/{org_id}/low-balance", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def run_task(gw: Gateway, org_id: str, key: str) -> int:
    """One create, settled by the reconciler; returns what it was charged."""
    with httpx.Client(base_url=gw.edge_url, headers={"Authorization": f"Bearer {key}"}) as c:
        answer = c.post(TASKS, json=TEXT_CREATE, timeout=15)
    assert answer.status_code == 200, answer.text
    task_id = answer.json()["id"]
    found: dict[str, Any] = {}

    def done() -> bool:
        for task in gw.admin.get(f"/v1/orgs/{org_id}/tasks").json()["items"]:
            if task["id"] == task_id and task["status"] == "succeeded":
                found.update(task)
        return bool(found)

    wait_until(done, f"task {task_id} never settled")
    return int(found["charged"])


def balance_events(receiver: Receiver, secret: str, org_id: str) -> list[dict[str, Any]]:
    """The org's balance events, each verified as a customer would (Standard Webhooks)."""
    found = []
    for headers, body in receiver.deliveries:
        payload = Webhook(secret).verify(body, headers)
        if payload.get("org_id") == org_id:
            found.append(payload)
    return found


def recharges(gw: Gateway, org_id: str) -> list[dict[str, Any]]:
    items = gw.admin.get(f"/v1/orgs/{org_id}/payments").json()["items"]
    return [p for p in items if p["kind"] == "recharge"]


def test_the_crossing_alerts_once_and_recharges_once(
    gw: Gateway, stripe_sim: StripeSimulator, receiver: Receiver
) -> None:
    org, key, secret = org_with_saved_card(gw, stripe_sim, receiver)
    intents_before = stripe_sim.counts()["payment_intent"]
    # Under the threshold after the first task: its settlement is the crossing.
    set_low_balance(gw, org["id"], threshold=TEN_CREDITS - 1, pack="ten", auto_recharge=True)
    first = run_task(gw, org["id"], key)
    wait_until(lambda: [p["status"] for p in recharges(gw, org["id"])] == ["paid"], "no recharge")
    wait_until(lambda: balance_events(receiver, secret, org["id"]), "no balance.low event")
    assert balance(gw, org["id"])["available"] == 2 * TEN_CREDITS - first

    # Back over the threshold, more tasks that stay over it: no more alerts or payments.
    for _ in range(2):
        run_task(gw, org["id"], key)
    (low,) = balance_events(receiver, secret, org["id"])
    assert low["type"] == "balance.low" and low["threshold"] == TEN_CREDITS - 1
    assert low["available"] < TEN_CREDITS - 1 and low["recharge"].startswith("rch_")
    assert len(recharges(gw, org["id"])) == 1
    assert stripe_sim.counts()["payment_intent"] == intents_before + 1
    (paid,) = recharges(gw, org["id"])
    assert paid["id"] == low["recharge"] and paid["credits"] == TEN_CREDITS


def test_fifty_settlements_crossing_together_fire_one_recharge(
    gw: Gateway, stripe_sim: StripeSimulator, receiver: Receiver
) -> None:
    org, key, secret = org_with_saved_card(gw, stripe_sim, receiver)
    hold = estimate(TEXT_CREATE)
    top_up = gw.admin.post(f"/v1/orgs/{org['id']}/credits", json={"amount": 50 * hold})
    assert top_up.status_code == 201
    start = balance(gw, org["id"])["available"]
    # Every settlement sees the balance under the threshold; the recharge (one micro-credit)
    # never lifts it back over, so only the first crossing may fire.
    set_low_balance(gw, org["id"], threshold=start - 1, pack="crumb", auto_recharge=True)
    intents_before = stripe_sim.counts()["payment_intent"]
    barrier = threading.Barrier(50)
    task_ids: list[str] = []
    lock = threading.Lock()

    def create() -> None:
        with httpx.Client(base_url=gw.edge_url, headers={"Authorization": f"Bearer {key}"}) as c:
            barrier.wait()
            answer = c.post(TASKS, json=TEXT_CREATE, timeout=30)
        assert answer.status_code == 200, answer.text
        with lock:
            task_ids.append(answer.json()["id"])

    threads = [threading.Thread(target=create) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(task_ids) == 50

    def all_settled() -> bool:
        items = gw.admin.get(f"/v1/orgs/{org['id']}/tasks", params={"limit": 100}).json()
        return sum(t["status"] == "succeeded" for t in items["items"]) == 50

    wait_until(all_settled, "the 50 tasks never settled", timeout=60)
    wait_until(lambda: [p["status"] for p in recharges(gw, org["id"])] == ["paid"], "no recharge")
    wait_until(lambda: balance_events(receiver, secret, org["id"]), "no balance.low event")
    assert len(balance_events(receiver, secret, org["id"])) == 1
    assert stripe_sim.counts()["payment_intent"] == intents_before + 1
    charged = sum(
        t["charged"]
        for t in gw.admin.get(f"/v1/orgs/{org['id']}/tasks", params={"limit": 100}).json()["items"]
    )
    assert balance(gw, org["id"]) == {"available": start - charged + 1, "reserved": 0}


def test_a_declined_recharge_is_one_event_and_no_retry(
    gw: Gateway, stripe_sim: StripeSimulator, receiver: Receiver
) -> None:
    org, key, secret = org_with_saved_card(gw, stripe_sim, receiver)
    set_low_balance(gw, org["id"], threshold=TEN_CREDITS - 1, pack="ten", auto_recharge=True)
    stripe_sim.declines(True)
    intents_before = stripe_sim.counts()["payment_intent"]
    for _ in range(3):  # the first crosses; the others are under it still
        run_task(gw, org["id"], key)
    wait_until(lambda: [p["status"] for p in recharges(gw, org["id"])] == ["failed"], "no fail")
    wait_until(
        lambda: len(balance_events(receiver, secret, org["id"])) == 2, "no recharge_failed event"
    )
    low, failed = balance_events(receiver, secret, org["id"])
    assert (low["type"], failed["type"]) == ("balance.low", "balance.recharge_failed")
    assert failed["code"] == "card_declined" and failed["payment"] == low["recharge"]
    assert len(recharges(gw, org["id"])) == 1
    assert stripe_sim.counts()["payment_intent"] == intents_before + 1
    assert recharges(gw, org["id"])[0]["error"] == "card_declined"
    stripe_sim.declines(False)
