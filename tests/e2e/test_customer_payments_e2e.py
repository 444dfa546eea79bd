"""Payments through the customer API (`/v1/me…`), end to end: an org's admin, signed in
through Clerk, buys a pack through Stripe (the Stripe simulator) and sees the balance, the
payment and the invoice; members read and never pay or change the low-balance settings; another
org sees none of it."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.clerk_tokens import APP, Jwks, SigningKey
from tests.e2e.customers import SECRET, World
from tests.e2e.harness import Gateway, Simulator
from tests.e2e.payments import paid_gateway, put_pack, wait_until
from tests.e2e.stripe_sim import StripeSimulator

TEN_CREDITS = 10_000_000


@pytest.fixture(scope="module")
def world(
    simulator: Simulator, stripe_sim: StripeSimulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    jwks, key = Jwks(), SigningKey("ins_key_1")
    jwks.keys = [key.jwk()]
    gw: Gateway = paid_gateway(
        tmp_path_factory.mktemp("customer-payments"),
        simulator,
        stripe_sim,
        NEXTAPI_CLERK_WEBHOOK_SECRET=SECRET,
        NEXTAPI_CLERK_JWKS_URL=jwks.url,
        NEXTAPI_CLERK_AUTHORIZED_PARTIES=APP,
    )
    put_pack(gw, "ten", TEN_CREDITS, 300)
    put_pack(gw, "retired", TEN_CREDITS, 200)
    assert (
        gw.admin.put(
            "/v1/credit-packs/retired",
            json={"credits": TEN_CREDITS, "amount": 200, "currency": "usd", "active": False},
        ).status_code
        == 200
    )
    found = World(gw, key)
    found.provision("org_pa", {"user_p1": "admin", "user_p2": "member"})
    found.provision("org_pb", {"user_q1": "admin"})
    yield found
    gw.stop()
    jwks.close()


def test_an_admin_buys_a_pack_and_sees_balance_payment_and_invoice(
    world: World, stripe_sim: StripeSimulator
) -> None:
    with world.me("user_p1", "org_pa", "admin") as admin:
        packs = admin.get("/v1/me/credit-packs").json()["items"]
        assert [p["id"] for p in packs] == ["ten"]  # only what is on sale
        assert packs[0]["amount_display"] == "3.00 USD"
        before = admin.get("/v1/me/balance").json()["available"]
        made = admin.post("/v1/me/checkout", json={"pack": "ten"})
        assert made.status_code == 201, made.text
        session = made.json()
        assert session["url"].startswith(stripe_sim.url)
        # Stripe sends the payer back to the portal on the host they called.
        stored = stripe_sim.client().v1.checkout.sessions.retrieve(session["id"])
        back = urlsplit(stored.success_url)
        assert f"{back.scheme}://{back.netloc}" == world.gw.control_url
        assert back.path == "/portal/billing"
        assert parse_qs(back.query)["checkout"] == ["complete"]
        assert stored.client_reference_id == world.orgs["org_pa"]

        assert stripe_sim.pay(session["id"]).status_code == 303
        wait_until(
            lambda: admin.get("/v1/me/balance").json()["available"] == before + TEN_CREDITS,
            "the customer's balance never grew by the pack",
        )
        payments = admin.get("/v1/me/payments").json()["items"]
        assert [(p["id"], p["status"]) for p in payments] == [(session["id"], "paid")]
        # Stripe's invoice.finalized (open) and invoice.paid are two events: waited for both.
        wait_until(
            lambda: [i["status"] for i in admin.get("/v1/me/invoices").json()["items"]] == ["paid"],
            "the invoice never showed paid",
        )
        (invoice,) = admin.get("/v1/me/invoices").json()["items"]
        assert invoice["status"] == "paid" and invoice["amount_display"] == "3.00 USD"
        csv = admin.get("/v1/me/invoices", params={"format": "csv"})
        assert csv.status_code == 200 and invoice["id"] in csv.text

        retired = admin.post("/v1/me/checkout", json={"pack": "retired"})
        assert retired.status_code == 404
        not_a_url = admin.post("/v1/me/checkout", json={"pack": "ten", "success_url": "js:x"})
        assert not_a_url.status_code == 400

    audit = world.gw.admin.get("/v1/audit", params={"action": "checkout.create"}).json()
    assert any(a["actor"] == "clerk:user_p1" for a in audit["items"])


def test_members_read_payments_and_never_pay(world: World) -> None:
    with world.me("user_p2", "org_pa", "member") as member:
        assert member.get("/v1/me/payments").status_code == 200
        assert member.get("/v1/me/invoices").status_code == 200
        assert member.get("/v1/me/low-balance").status_code == 200
        refused = member.post("/v1/me/checkout", json={"pack": "ten"})
        assert refused.status_code == 403, refused.text
        refused = member.put("/v1/me/low-balance", json={"threshold": 1})
        assert refused.status_code == 403, refused.text


def test_an_admin_sets_the_low_balance_alert(world: World) -> None:
    with world.me("user_p1", "org_pa", "admin") as admin:
        needs_pack = admin.put(
            "/v1/me/low-balance", json={"threshold": 5_000_000, "auto_recharge": True}
        )
        assert needs_pack.status_code == 400
        answer = admin.put(
            "/v1/me/low-balance",
            json={"threshold": 5_000_000, "pack": "ten", "auto_recharge": True},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() | {"card_saved": None} == {
            "threshold": 5_000_000,
            "pack": "ten",
            "auto_recharge": True,
            "card_saved": None,
            "low": False,
            "open_disputes": 0,
        }
        off = admin.put("/v1/me/low-balance", json={"threshold": None})
        assert off.json()["threshold"] is None and off.json()["auto_recharge"] is False


def test_another_org_sees_none_of_it(world: World) -> None:
    with world.me("user_q1", "org_pb", "admin") as other:
        assert other.get("/v1/me/payments").json()["items"] == []
        assert other.get("/v1/me/invoices").json()["items"] == []
