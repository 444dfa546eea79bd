"""Stripe's events against the control plane in-process: whatever order they come in, and
however often, a payment ends with the same ledger (its pack granted once, the refunded and
lost-dispute share taken back), the same dispute state and the same invoice; an event is
claimed only when it applied; without a signing secret nothing is accepted."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from control.payments import purchases
from control.store import db as dbm
from tests.stripe_events import event, sign
from tests.unit.conftest import Control, ControlRunner

SECRET = "whsec_unit_" + "5" * 24
HOOK = "/v1/integrations/stripe/webhook"
CREDITS = 10_000_000  # for 10.00 USD


@pytest.fixture(autouse=True)
def _signing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTAPI_STRIPE_WEBHOOK_SECRET", SECRET)


async def send(ctl: Control, payload: bytes) -> dict[str, Any]:
    response = await ctl.post(
        HOOK, content=payload, headers={"Stripe-Signature": sign(payload, SECRET)}, token=None
    )
    assert response.status_code == 200, response.text
    return response.json()


async def sold(ctl: Control, n: int) -> tuple[str, str, str]:
    """An org with a checkout of the pack recorded (as POST …/checkout leaves it)."""
    org = await ctl.create_org()
    session, intent = f"cs_test_{n}", f"pi_{n}"
    pack = {"id": "ten", "credits": CREDITS, "amount": 1000, "currency": "usd"}
    async with ctl.st.transaction() as tx:
        await purchases.record(tx, session, org["id"], pack, "checkout", "open", dbm.now())
    return org["id"], session, intent


def story(n: int, org_id: str, session: str, intent: str) -> list[bytes]:
    """One payment's events: paid, refunded 1.00 then 2.50 (cumulative), a dispute of 3.00
    opened and lost, the invoice finalized then paid."""
    paid = {
        "id": session,
        "object": "checkout.session",
        "payment_status": "paid",
        "amount_total": 1000,
        "currency": "usd",
        "client_reference_id": org_id,
        "metadata": {"org_id": org_id, "pack": "ten"},
        "payment_intent": intent,
        "customer": f"cus_{n}",
    }
    charge = {"id": f"ch_{n}", "object": "charge", "payment_intent": intent, "amount": 1000}
    dispute = {
        "id": f"dp_{n}",
        "object": "dispute",
        "charge": f"ch_{n}",
        "payment_intent": intent,
        "amount": 300,
        "currency": "usd",
    }
    invoice = {
        "id": f"in_{n}",
        "object": "invoice",
        "number": f"NXT-{n:04d}",
        "total": 1000,
        "currency": "usd",
        "hosted_invoice_url": f"https://invoice.example/{n}",
        "invoice_pdf": f"https://invoice.example/{n}.pdf",
        "metadata": {"org_id": org_id},
    }
    return [
        event(f"evt_{n}_paid", "checkout.session.completed", paid),
        event(f"evt_{n}_r1", "charge.refunded", charge | {"amount_refunded": 100}),
        event(f"evt_{n}_r2", "charge.refunded", charge | {"amount_refunded": 350}),
        event(f"evt_{n}_dopen", "charge.dispute.created", dispute | {"status": "needs_response"}),
        event(f"evt_{n}_dlost", "charge.dispute.closed", dispute | {"status": "lost"}),
        event(f"evt_{n}_ifin", "invoice.finalized", invoice | {"status": "open"}),
        event(f"evt_{n}_ipaid", "invoice.paid", invoice | {"status": "paid"}),
    ]


async def final_state(ctl: Control, org_id: str) -> dict[str, Any]:
    entries = await ctl.rows(
        "SELECT kind, SUM(amount) AS amount, COUNT(*) AS n FROM ledger WHERE org_id=? "
        "GROUP BY kind ORDER BY kind",
        org_id,
    )
    disputes = await ctl.rows(
        "SELECT status, closed_at IS NOT NULL AS closed FROM disputes WHERE org_id=?", org_id
    )
    invoices = await ctl.rows("SELECT number, status FROM invoices WHERE org_id=?", org_id)
    return {
        "purchase": [(e["amount"], e["n"]) for e in entries if e["kind"] == "purchase"],
        "reversed": sum(-e["amount"] for e in entries if e["kind"] == "reversal"),
        "disputes": disputes,
        "invoices": invoices,
    }


def test_every_order_and_every_replay_ends_in_the_same_ledger(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        # 1.00 + 2.50 refunded (cumulative 3.50) and 3.00 lost: 6.50 of 10.00 returned.
        expected = {
            "purchase": [(CREDITS, 1)],
            "reversed": 6_500_000,
            "disputes": [{"status": "lost", "closed": 1}],
            "invoices": [{"number": None, "status": "paid"}],
        }
        # Every order of the five money events, with the invoice's two among them.
        for n, order in enumerate(itertools.permutations(range(5))):
            org_id, session, intent = await sold(ctl, n)
            events = story(n, org_id, session, intent)
            sequence = [events[i] for i in order]
            sequence.insert(n % 6, events[6])  # invoice.paid somewhere among them
            sequence.append(events[5])  # invoice.finalized last: paid stays paid
            for payload in sequence + sequence:  # each twice
                await send(ctl, payload)
            state = await final_state(ctl, org_id)
            want = expected | {"invoices": [{"number": f"NXT-{n:04d}", "status": "paid"}]}
            assert state == want, (order, state)
            balance = (await ctl.get(f"/v1/orgs/{org_id}/balance")).json()
            assert balance == {"available": CREDITS - 6_500_000, "reserved": 0}

    control_plane(body)


def test_a_currency_no_pack_is_sold_in_is_a_mismatch_not_an_error(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        org_id, session, intent = await sold(ctl, 700)
        obj = json.loads(story(700, org_id, session, intent)[0])["data"]["object"]
        odd = event("evt_700", "checkout.session.completed", obj | {"currency": "xyz"})
        assert (await send(ctl, odd))["outcome"] == "mismatch"
        (payment,) = (await ctl.get(f"/v1/orgs/{org_id}/payments")).json()["items"]
        assert payment["status"] == "mismatch" and "'xyz'" in payment["error"]

    control_plane(body)


def test_a_replayed_event_is_acknowledged_and_changes_nothing(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        org_id, session, intent = await sold(ctl, 100)
        paid = story(100, org_id, session, intent)[0]
        assert (await send(ctl, paid))["outcome"] == "granted"
        assert (await send(ctl, paid)) == {"received": True, "replay": True}
        claims = await ctl.rows("SELECT id, type, outcome FROM stripe_events")
        assert claims == [
            {"id": "evt_100_paid", "type": "checkout.session.completed", "outcome": "granted"}
        ]

    control_plane(body)


def test_an_unpaid_session_waits_for_its_async_payment(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org_id, session, intent = await sold(ctl, 200)
        obj = json.loads(story(200, org_id, session, intent)[0])["data"]["object"]
        waiting = event(
            "evt_200_c", "checkout.session.completed", obj | {"payment_status": "unpaid"}
        )
        assert (await send(ctl, waiting))["outcome"].startswith("waiting")
        assert (await ctl.get(f"/v1/orgs/{org_id}/balance")).json()["available"] == 0
        later = event("evt_200_a", "checkout.session.async_payment_succeeded", obj)
        assert (await send(ctl, later))["outcome"] == "granted"
        assert (await ctl.get(f"/v1/orgs/{org_id}/balance")).json()["available"] == CREDITS

    control_plane(body)


def test_a_session_made_elsewhere_is_granted_from_its_metadata_once(
    control_plane: ControlRunner,
) -> None:
    """The process died between Stripe making the session and recording it: the paid event
    still grants, by the org and pack its metadata names."""

    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        pack = {"credits": CREDITS, "amount": 1000, "currency": "usd"}
        assert (await ctl.put("/v1/credit-packs/ten", json=pack)).status_code == 201
        obj = json.loads(story(300, org["id"], "cs_unrecorded", "pi_300")[0])["data"]["object"]
        assert (await send(ctl, event("evt_300", "checkout.session.completed", obj)))[
            "outcome"
        ] == "granted"
        unknown = obj | {"id": "cs_nobody", "metadata": {}, "client_reference_id": None}
        assert (await send(ctl, event("evt_301", "checkout.session.completed", unknown)))[
            "outcome"
        ] == "unknown"
        assert (await ctl.get(f"/v1/orgs/{org['id']}/balance")).json()["available"] == CREDITS

    control_plane(body)


def test_without_a_signing_secret_nothing_is_accepted(
    control_plane: ControlRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEXTAPI_STRIPE_WEBHOOK_SECRET")

    async def body(ctl: Control) -> None:
        org_id, session, intent = await sold(ctl, 400)
        paid = story(400, org_id, session, intent)[0]
        response = await ctl.post(
            HOOK, content=paid, headers={"Stripe-Signature": sign(paid, SECRET)}, token=None
        )
        assert response.status_code == 503
        assert "NEXTAPI_STRIPE_WEBHOOK_SECRET" in response.json()["error"]["message"]
        assert await ctl.rows("SELECT * FROM stripe_events") == []
        too_big = await ctl.post(HOOK, content=b"x" * (2 << 20), token=None)
        assert too_big.status_code == 503  # refused before the body is read

    control_plane(body)


def test_a_body_past_a_mebibyte_is_413(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        response = await ctl.post(HOOK, content=b"{" + b" " * (1 << 20), token=None)
        assert response.status_code == 413

    control_plane(body)


def test_a_refund_under_the_threshold_never_charges_the_card_it_refunded(
    control_plane: ControlRunner,
) -> None:
    """Only a settlement crosses the low-balance threshold: credits taken back by a refund do
    not set off an auto-recharge (nor its alert)."""

    async def body(ctl: Control) -> None:
        org_id, session, intent = await sold(ctl, 500)
        pack = {"credits": CREDITS, "amount": 1000, "currency": "usd"}
        assert (await ctl.put("/v1/credit-packs/ten", json=pack)).status_code == 201
        events = story(500, org_id, session, intent)
        await send(ctl, events[0])
        settings = {"threshold": CREDITS // 2, "pack": "ten", "auto_recharge": True}
        assert (await ctl.put(f"/v1/orgs/{org_id}/low-balance", json=settings)).status_code == 200
        whole = event(
            "evt_500_all", "charge.refunded", {"payment_intent": intent, "amount_refunded": 1000}
        )
        assert (await send(ctl, whole))["outcome"] == f"took back {CREDITS}"
        assert await ctl.rows("SELECT id FROM payments WHERE kind='recharge'") == []
        assert await ctl.rows("SELECT id FROM webhook_events") == []
        low = (await ctl.get(f"/v1/orgs/{org_id}/low-balance")).json()
        assert low["low"] is False  # the next settlement under it is the crossing

    control_plane(body)


def test_an_expired_session_is_marked_and_a_paid_one_is_not(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org_id, session, intent = await sold(ctl, 600)
        obj = json.loads(story(600, org_id, session, intent)[0])["data"]["object"]
        expired = event("evt_600_x", "checkout.session.expired", obj | {"status": "expired"})
        assert (await send(ctl, expired))["outcome"] == "expired"
        (payment,) = (await ctl.get(f"/v1/orgs/{org_id}/payments")).json()["items"]
        assert payment["status"] == "expired"
        org2, session2, intent2 = await sold(ctl, 601)
        await send(ctl, story(601, org2, session2, intent2)[0])
        late = json.loads(story(601, org2, session2, intent2)[0])["data"]["object"]
        again = event("evt_601_x", "checkout.session.expired", late)
        assert (await send(ctl, again))["outcome"] == "ignored: not open"

    control_plane(body)
