"""Credits bought through Stripe, end to end: a gateway whose Stripe client talks to the Stripe
simulator over HTTP, and whose webhook takes the simulator's signed events. A checkout grants
its pack exactly once however its events arrive; a refund takes back exactly its share; a
dispute suspends creates until it is won; invoices are kept; a bad signature changes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import TEXT_CREATE, Gateway, Simulator
from tests.e2e.payments import (
    TASKS,
    balance,
    checkout,
    deliver,
    ledger,
    paid_gateway,
    put_pack,
    wait_until,
)
from tests.e2e.stripe_sim import StripeSimulator
from tests.stripe_events import event, sign

TEN_CREDITS = 10_000_000


@pytest.fixture(scope="module")
def gw(
    simulator: Simulator, stripe_sim: StripeSimulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    gateway = paid_gateway(tmp_path_factory.mktemp("paid"), simulator, stripe_sim)
    put_pack(gateway, "ten", TEN_CREDITS, 300)  # 10 credits for 3.00 USD
    yield gateway
    gateway.stop()


@pytest.fixture(autouse=True)
def _delivering(stripe_sim: StripeSimulator, gw: Gateway) -> Iterator[None]:
    yield
    stripe_sim.set_webhook(gw.control_url + "/v1/integrations/stripe/webhook", deliver=True)


def paid_session(gw: Gateway, stripe_sim: StripeSimulator, org_id: str) -> dict:
    session = checkout(gw, org_id, "ten")
    assert session["url"].startswith(stripe_sim.url + "/checkout/")
    assert stripe_sim.pay(session["id"]).status_code == 303
    return session


def granted_intent(gw: Gateway, stripe_sim: StripeSimulator, org_id: str) -> str:
    """A paid checkout of the pack, once granted: its payment intent at Stripe."""
    session = paid_session(gw, stripe_sim, org_id)
    wait_until(lambda: balance(gw, org_id)["available"] == TEN_CREDITS, "never granted")
    intent = stripe_sim.client().v1.checkout.sessions.retrieve(session["id"]).payment_intent
    assert isinstance(intent, str)
    return intent


def events_of(stripe_sim: StripeSimulator, org_id: str) -> list[dict]:
    """The simulator's events about this org's payments (each names the org: the session as
    its client_reference_id, the invoice in its metadata), in the order Stripe made them."""
    return [e for e in stripe_sim.events() if org_id in e["payload"]]


def test_a_checkout_grants_its_pack_once_under_replays_duplicates_and_any_order(
    gw: Gateway, stripe_sim: StripeSimulator
) -> None:
    org = gw.create_org(credits=0)
    stripe_sim.set_webhook(None, deliver=False)  # the test delivers, in its own order
    session = paid_session(gw, stripe_sim, org["id"])
    mine = events_of(stripe_sim, org["id"])
    types = [e["type"] for e in mine]
    assert types == ["checkout.session.completed", "invoice.finalized", "invoice.paid"], types
    assert balance(gw, org["id"])["available"] == 0  # nothing before Stripe's event

    # Out of order (invoice.paid before invoice.finalized, both before the session), each
    # twice, and the completed event sent again by Stripe with a fresh signature.
    for recorded in [*reversed(mine), *mine]:
        answer = deliver(gw, recorded["payload"].encode(), stripe_sim.webhook_secret)
        assert answer.status_code == 200, answer.text
    completed = next(e for e in mine if e["type"] == "checkout.session.completed")
    assert stripe_sim.resend(completed["id"], gw.control_url + "/v1/integrations/stripe/webhook")
    # Another event carrying the same session (as async_payment_succeeded would): no second grant.
    obj = json.loads(completed["payload"])["data"]["object"]
    again = event("evt_same_session", "checkout.session.async_payment_succeeded", obj)
    assert deliver(gw, again, stripe_sim.webhook_secret).json()["outcome"] == "already"

    assert balance(gw, org["id"]) == {"available": TEN_CREDITS, "reserved": 0}
    (purchase,) = ledger(gw, org["id"], "purchase")
    assert purchase["amount"] == TEN_CREDITS and session["id"] in purchase["reason"]
    assert "3.00 USD" in purchase["reason"]

    invoices = gw.admin.get(f"/v1/orgs/{org['id']}/invoices").json()["items"]
    assert len(invoices) == 1, invoices
    (invoice,) = invoices
    assert invoice["status"] == "paid"  # invoice.finalized, delivered after paid, kept it paid
    assert invoice["amount"] == 300 and invoice["currency"] == "usd"
    assert invoice["amount_display"] == "3.00 USD" and invoice["number"]
    assert invoice["hosted_invoice_url"] and invoice["invoice_pdf"]
    csv = gw.admin.get(f"/v1/orgs/{org['id']}/invoices", params={"format": "csv"})
    assert csv.status_code == 200 and invoice["id"] in csv.text
    payments = gw.admin.get(f"/v1/orgs/{org['id']}/payments").json()["items"]
    assert [(p["id"], p["status"], p["credits"]) for p in payments] == [
        (session["id"], "paid", TEN_CREDITS)
    ]


def test_delivered_by_stripe_the_balance_grows_by_the_pack(
    gw: Gateway, stripe_sim: StripeSimulator
) -> None:
    org = gw.create_org(credits=0)
    paid_session(gw, stripe_sim, org["id"])
    wait_until(lambda: balance(gw, org["id"])["available"] == TEN_CREDITS, "never granted")
    assert len(ledger(gw, org["id"], "purchase")) == 1


def test_a_bad_or_stale_signature_is_400_and_changes_nothing(
    gw: Gateway, stripe_sim: StripeSimulator
) -> None:
    org = gw.create_org(credits=0)
    stripe_sim.set_webhook(None, deliver=False)
    session = paid_session(gw, stripe_sim, org["id"])
    completed = next(
        e for e in events_of(stripe_sim, org["id"]) if e["type"] == "checkout.session.completed"
    )
    assert session["id"] in completed["payload"]
    payload = completed["payload"].encode()
    secret = stripe_sim.webhook_secret
    refused = [
        deliver(gw, payload, secret, signature=sign(payload, "whsec_not_the_secret")),
        deliver(gw, payload, secret, signature=sign(payload, secret, int(time.time()) - 600)),
        deliver(gw, payload, secret, signature="t=1,v1=00"),
        deliver(gw, payload.replace(b'"paid"', b'"PAID"'), secret, signature=sign(payload, secret)),
        httpx.post(gw.control_url + "/v1/integrations/stripe/webhook", content=payload),
    ]
    for answer in refused:
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "InvalidSignature"
    assert balance(gw, org["id"])["available"] == 0
    # The genuine one, after all that, is applied: nothing above claimed its id.
    assert deliver(gw, payload, secret).json()["outcome"] == "granted"
    assert balance(gw, org["id"])["available"] == TEN_CREDITS


def test_an_amount_that_is_not_the_packs_is_not_granted_and_is_audited(
    gw: Gateway, stripe_sim: StripeSimulator
) -> None:
    org = gw.create_org(credits=0)
    session = checkout(gw, org["id"], "ten")
    forged = {
        "id": session["id"],
        "object": "checkout.session",
        "payment_status": "paid",
        "amount_total": 30,  # 0.30 USD for a 3.00 USD pack
        "currency": "usd",
        "client_reference_id": org["id"],
        "metadata": {"org_id": org["id"], "pack": "ten"},
        "payment_intent": "pi_forged",
    }
    answer = deliver(
        gw, event("evt_cheap", "checkout.session.completed", forged), stripe_sim.webhook_secret
    )
    assert answer.json()["outcome"] == "mismatch"
    yen = forged | {"amount_total": 300, "currency": "jpy"}
    answer = deliver(
        gw, event("evt_yen", "checkout.session.completed", yen), stripe_sim.webhook_secret
    )
    assert answer.json()["outcome"] == "mismatch"
    assert balance(gw, org["id"])["available"] == 0
    audit = gw.admin.get("/v1/audit", params={"action": "payment.mismatch"}).json()["items"]
    assert any(a["target"] == org["id"] for a in audit), audit


def create(gw: Gateway, key: str) -> httpx.Response:
    with httpx.Client(
        base_url=gw.edge_url, headers={"Authorization": f"Bearer {key}"}, timeout=15
    ) as client:
        return client.post(TASKS, json=TEXT_CREATE)


def test_a_refund_takes_back_exactly_its_share_and_may_leave_the_balance_negative(
    gw: Gateway, stripe_sim: StripeSimulator
) -> None:
    org = gw.create_org(credits=0)
    key = gw.create_key(org["id"])["key"]
    intent = granted_intent(gw, stripe_sim, org["id"])

    stripe_sim.client().v1.refunds.create(params={"payment_intent": intent, "amount": 100})
    wait_until(
        lambda: balance(gw, org["id"])["available"] == TEN_CREDITS - 3_333_333,
        "a third refunded: a third of the credits (rounded down) taken back",
    )
    # Spend some, then the rest is refunded: every credit of the pack goes back.
    answer = create(gw, key)
    assert answer.status_code == 200, answer.text
    wait_until(
        lambda: gw.admin.get(f"/v1/orgs/{org['id']}/tasks").json()["items"][0]["charged"],
        "the task never settled",
    )
    spent = gw.admin.get(f"/v1/orgs/{org['id']}/tasks").json()["items"][0]["charged"]
    stripe_sim.client().v1.refunds.create(params={"payment_intent": intent})
    wait_until(lambda: balance(gw, org["id"])["available"] == -spent, "the whole pack taken back")
    reversals = ledger(gw, org["id"], "reversal")
    assert sorted(-r["amount"] for r in reversals) == [3_333_333, TEN_CREDITS - 3_333_333]
    refused = create(gw, key)
    assert refused.status_code == 402, refused.text
    assert refused.json()["error"]["code"] == "InsufficientCredits"


def test_a_dispute_suspends_creates_until_it_is_won(
    gw: Gateway, stripe_sim: StripeSimulator
) -> None:
    org = gw.create_org(credits=0)
    key = gw.create_key(org["id"])["key"]
    intent = granted_intent(gw, stripe_sim, org["id"])
    dispute = stripe_sim.dispute(payment_intent=intent)

    def refused() -> bool:
        answer = create(gw, key)
        return answer.status_code == 402 and answer.json()["error"]["code"] == "PaymentDisputed"

    wait_until(refused, "the dispute never suspended creates")
    low = gw.admin.get(f"/v1/orgs/{org['id']}/low-balance").json()
    assert low["open_disputes"] == 1
    audit = gw.admin.get("/v1/audit", params={"action": "org.dispute_opened"}).json()["items"]
    assert any(a["target"] == org["id"] for a in audit)

    stripe_sim.close_dispute(dispute["id"], "won")
    wait_until(lambda: create(gw, key).status_code == 200, "winning never lifted it")
    assert ledger(gw, org["id"], "reversal") == []  # won: nothing taken back


def test_a_lost_dispute_takes_back_the_disputed_share_and_lifts_the_suspension(
    gw: Gateway, stripe_sim: StripeSimulator
) -> None:
    org = gw.create_org(credits=0)
    intent = granted_intent(gw, stripe_sim, org["id"])
    dispute = stripe_sim.dispute(payment_intent=intent, amount=150)
    stripe_sim.close_dispute(dispute["id"], "lost")
    wait_until(lambda: balance(gw, org["id"])["available"] == TEN_CREDITS // 2, "half taken back")
    low = gw.admin.get(f"/v1/orgs/{org['id']}/low-balance").json()
    assert low["open_disputes"] == 0


def test_packs_are_audited_data(gw: Gateway, tmp_path: Path) -> None:
    created = gw.admin.put(
        "/v1/credit-packs/yen-pack", json={"credits": 5_000_000, "amount": 500, "currency": "JPY"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["amount_display"] == "500 JPY"
    assert created.json()["name"] == "5 credits"
    changed = gw.admin.put(
        "/v1/credit-packs/yen-pack",
        json={"credits": 6_000_000, "amount": 500, "currency": "jpy", "active": False},
    )
    assert changed.status_code == 200 and changed.json()["active"] is False
    listed = {p["id"]: p for p in gw.admin.get("/v1/credit-packs").json()["items"]}
    assert listed["yen-pack"]["credits"] == 6_000_000
    org = gw.create_org(credits=0)
    inactive = gw.admin.post(f"/v1/orgs/{org['id']}/checkout", json={"pack": "yen-pack"})
    assert inactive.status_code == 404
    bad = gw.admin.put("/v1/credit-packs/bad", json={"credits": 1, "amount": 1, "currency": "kwd"})
    assert bad.status_code == 400
    assert gw.admin.delete("/v1/credit-packs/yen-pack").json() == {
        "id": "yen-pack",
        "deleted": True,
    }
    assert gw.admin.get("/v1/credit-packs/yen-pack").status_code == 404
    actions = [
        a["action"] for a in gw.admin.get("/v1/audit").json()["items"] if a["target"] == "yen-pack"
    ]
    assert actions == ["pack.delete", "pack.update", "pack.create"]


def test_an_admin_refund_goes_through_stripe_and_its_event_takes_the_credits_back(
    gw: Gateway, stripe_sim: StripeSimulator
) -> None:
    org = gw.create_org(credits=0)
    session = paid_session(gw, stripe_sim, org["id"])
    wait_until(lambda: balance(gw, org["id"])["available"] == TEN_CREDITS, "never granted")
    base = f"/v1/orgs/{org['id']}/payments/{session['id']}/refund"
    too_much = gw.admin.post(base, json={"amount": 301})
    assert too_much.status_code == 400, too_much.text
    refund = gw.admin.post(base, json={"amount": 150, "reason": "asked"})
    assert refund.status_code == 202, refund.text
    assert refund.json()["id"].startswith("re_") and refund.json()["amount_display"] == "1.50 USD"
    wait_until(
        lambda: balance(gw, org["id"])["available"] == TEN_CREDITS // 2, "half not taken back"
    )
    rest = gw.admin.post(base, json={})
    assert rest.status_code == 202 and rest.json()["amount"] == 150
    wait_until(lambda: balance(gw, org["id"])["available"] == 0, "the rest not taken back")
    assert gw.admin.post(base, json={}).status_code == 409  # nothing left to refund
    other = gw.create_org(credits=0)
    elsewhere = f"/v1/orgs/{other['id']}/payments/{session['id']}/refund"
    assert gw.admin.post(elsewhere, json={}).status_code == 404
    audit = gw.admin.get("/v1/audit", params={"action": "payment.refund"}).json()["items"]
    assert sum(a["target"] == org["id"] for a in audit) == 2
