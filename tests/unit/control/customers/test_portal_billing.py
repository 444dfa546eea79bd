"""The portal's billing page over the in-process control plane, its Stripe client talking to the
Stripe simulator over HTTP (the one stand-in for the paid service): the
packs on sale with a Buy button for org admins only, Buy making a Checkout Session through the
customer API (its return URLs on the host the browser used) and sending the browser to
Stripe's page, the notice on return, the org's payments and invoices with their CSVs, and the
low-balance form (admins) read exactly in credits; the CSP lets a Buy form reach Stripe."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from control.payments.stripeapi import StripeApi
from tests.e2e.stripe_sim import StripeSimulator
from tests.unit.conftest import Control, ControlRunner
from tests.unit.control.customers.test_portal_customer_pages import form_post, sign_in_as, world


@pytest.fixture(scope="module")
def stripe_sim() -> Iterator[StripeSimulator]:
    sim = StripeSimulator()
    yield sim
    sim.stop()


def with_stripe(ctl: Control, sim: StripeSimulator) -> StripeApi:
    """Stripe set up on the control plane, as NEXTAPI_STRIPE_API_BASE points it at the
    simulator."""
    assert ctl.app is not None
    api = ctl.app.state.stripe = StripeApi.from_env(
        {"NEXTAPI_STRIPE_SECRET_KEY": sim.api_key, "NEXTAPI_STRIPE_API_BASE": sim.url}
    )
    return api


def sessions_made(sim: StripeSimulator) -> int:
    return sim.counts()["checkout.session"]


async def put_pack(ctl: Control, pack: str, credits: int, amount: int, **fields: Any) -> None:
    body = {"credits": credits, "amount": amount, "currency": "usd"} | fields
    response = await ctl.put(f"/v1/credit-packs/{pack}", json=body)
    assert response.status_code in (200, 201), response.text


async def paid(ctl: Control, org_id: str, payment_id: str, taken_back: int = 0) -> None:
    """A paid payment and its invoice, as Stripe's events leave them."""
    async with ctl.st.transaction() as tx:
        await tx.execute(
            "INSERT INTO payments (id, org_id, kind, pack_id, credits, amount, currency, status, "
            "taken_back, created_at, updated_at) VALUES (?, ?, 'checkout', 'ten', 10000000, 1234,"
            " 'usd', 'paid', ?, 1700000000, 1700000000)",
            (payment_id, org_id, taken_back),
        )
        await tx.execute(
            "INSERT INTO invoices (id, org_id, number, amount, currency, status, hosted_url, "
            "pdf_url, issued_at, updated_at) VALUES (?, ?, ?, 1234, 'usd', 'paid', ?, ?, "
            "1700000000, 1700000000)",
            (
                f"in_{payment_id}",
                org_id,
                f"INV-{payment_id}",
                f"https://invoice.stripe.com/i/{payment_id}",
                f"https://pay.stripe.com/invoice/{payment_id}/pdf",
            ),
        )


def alert(page: httpx.Response) -> str:
    match = re.search(r'role="alert"[^>]*>([^<]*)<', page.text)
    assert match, page.text
    return html.unescape(match.group(1))


def test_an_admin_buys_a_pack_and_is_sent_to_stripe_returning_to_the_host_used(
    control_plane: ControlRunner, stripe_sim: StripeSimulator
) -> None:
    async def body(ctl: Control) -> None:
        provider, org_a, _ = await world(ctl)
        with_stripe(ctl, stripe_sim)
        made_before = sessions_made(stripe_sim)
        await put_pack(ctl, "ten", 10_000_000, 1234, name="Ten credits")
        await put_pack(ctl, "retired", 5_000_000, 500, active=False)
        await sign_in_as(ctl, provider, "user_a")
        page = await ctl.get("/portal/billing", token=None)
        assert page.status_code == 200
        assert "Ten credits" in page.text and "12.34 USD" in page.text
        assert "retired" not in page.text and "5.00 USD" not in page.text  # not on sale
        assert 'aria-label="Buy Ten credits for 12.34 USD"' in page.text
        host = {"Host": "portal.acme.example"}
        bought = await ctl.post(
            "/portal/billing/buy",
            token=None,
            headers=host,
            data={"csrf_token": re.findall(r'name="csrf_token" value="([^"]+)"', page.text)[0]}
            | {"pack": "ten"},
        )
        assert bought.status_code == 303, bought.text
        location = bought.headers["location"]
        assert location.startswith(f"{stripe_sim.url}/checkout/cs_test_")
        assert sessions_made(stripe_sim) == made_before + 1
        sent = stripe_sim.client().v1.checkout.sessions.retrieve(location.rsplit("/", 1)[1])
        back = "http://portal.acme.example/portal/billing?checkout="
        assert sent.success_url == back + "complete&session={CHECKOUT_SESSION_ID}"
        assert sent.cancel_url == back + "cancelled"
        assert (sent.amount_total, sent.currency) == (1234, "usd")
        (payment,) = (await ctl.get(f"/v1/orgs/{org_a}/payments")).json()["items"]
        assert (payment["id"], payment["status"], payment["amount_display"]) == (
            sent.id,
            "open",
            "12.34 USD",
        )
        audit = (await ctl.get("/v1/audit", params={"action": "checkout.create"})).json()
        assert audit["items"][0]["actor"] == "clerk:user_a"
        back_page = await ctl.get(
            f"/portal/billing?checkout=complete&session={sent.id}", token=None
        )
        assert 'id="checkout-notice"' in back_page.text and "payment went through" in back_page.text
        cancelled = await ctl.get("/portal/billing?checkout=cancelled", token=None)
        assert "nothing was charged" in cancelled.text
        unknown = await form_post(ctl, "/portal/billing/buy", page, pack="retired")
        assert unknown.status_code == 404 and "on sale" in alert(unknown)
        forged = await ctl.post("/portal/billing/buy", token=None, data={"pack": "ten"})
        assert forged.status_code == 403 and sessions_made(stripe_sim) == made_before + 1

    control_plane(body)


def test_a_member_sees_packs_payments_and_settings_but_no_control(
    control_plane: ControlRunner, stripe_sim: StripeSimulator
) -> None:
    async def body(ctl: Control) -> None:
        provider, org_a, _ = await world(ctl)
        with_stripe(ctl, stripe_sim)
        made_before = sessions_made(stripe_sim)
        await put_pack(ctl, "ten", 10_000_000, 1234)
        await paid(ctl, org_a, "cs_paid_1", taken_back=2_500_000)
        await sign_in_as(ctl, provider, "user_b")
        page = await ctl.get("/portal/billing", token=None)
        assert page.status_code == 200
        assert "10 credits" in page.text and 'id="buy-admins-only"' in page.text
        for control in (">Buy<", "/portal/billing/buy", "Save low-balance settings"):
            assert control not in page.text, control
        payments = page.text[page.text.index('id="payments"') :]
        assert "12.34 USD" in payments and "2.500000" in payments and "paid" in payments
        assert "INV-cs_paid_1" in page.text
        assert 'href="https://pay.stripe.com/invoice/cs_paid_1/pdf"' in page.text
        refused = await form_post(ctl, "/portal/billing/buy", page, pack="ten")
        assert refused.status_code == 403 and sessions_made(stripe_sim) == made_before
        refused = await form_post(ctl, "/portal/billing/low-balance", page, threshold="5")
        assert refused.status_code == 403
        for what in ("payments", "invoices"):
            csv = await ctl.get(f"/portal/download/{what}", token=None)
            assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        assert "cs_paid_1" in (await ctl.get("/portal/download/payments", token=None)).text
        assert "INV-cs_paid_1" in (await ctl.get("/portal/download/invoices", token=None)).text

    control_plane(body)


def test_the_low_balance_form_saves_credits_exactly_and_shows_the_apis_refusal(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        provider, org_a, _ = await world(ctl)
        await put_pack(ctl, "ten", 10_000_000, 1234)
        await sign_in_as(ctl, provider, "user_a")
        page = await ctl.get("/portal/billing", token=None)
        assert "no alert" in page.text
        saved = await form_post(
            ctl, "/portal/billing/low-balance", page, threshold="2.5", pack="ten"
        )
        assert saved.status_code == 303 and saved.headers["location"].endswith("saved=low-balance")
        settings = (await ctl.get(f"/v1/orgs/{org_a}/low-balance")).json()
        assert (settings["threshold"], settings["pack"], settings["auto_recharge"]) == (
            2_500_000,
            "ten",
            False,
        )
        page = await ctl.get("/portal/billing?saved=low-balance", token=None)
        assert (
            'id="saved"' in page.text
            and 'name="threshold" inputmode="decimal" value="2.5"' in page.text
        )
        bad = await form_post(ctl, "/portal/billing/low-balance", page, threshold="1.2345678")
        assert bad.status_code == 400 and "at most 6 decimals" in alert(bad)
        assert 'value="1.2345678"' in bad.text  # what was typed stays
        refused = await form_post(
            ctl, "/portal/billing/low-balance", page, threshold="", auto_recharge="on"
        )
        assert refused.status_code == 400 and "auto_recharge" in alert(refused)
        cleared = await form_post(ctl, "/portal/billing/low-balance", page, threshold="")
        assert cleared.status_code == 303
        assert (await ctl.get(f"/v1/orgs/{org_a}/low-balance")).json()["threshold"] is None

    control_plane(body)


@pytest.mark.parametrize(
    ("api_base", "allowed"),
    [
        ("", "https://checkout.stripe.com"),
        ("http://127.0.0.1:4242", "http://127.0.0.1:4242 https://checkout.stripe.com"),
    ],
)
def test_with_stripe_set_up_a_buy_form_may_lead_to_its_checkout(
    control_plane: ControlRunner, api_base: str, allowed: str
) -> None:
    async def body(ctl: Control) -> None:
        before = (await ctl.get("/portal/", token=None)).headers["content-security-policy"]
        assert "checkout.stripe.com" not in before  # Stripe not set up: nowhere to go
        assert ctl.app is not None
        environ = {"NEXTAPI_STRIPE_SECRET_KEY": "sk_test_x", "NEXTAPI_STRIPE_API_BASE": api_base}
        ctl.app.state.stripe = StripeApi.from_env(environ)
        policy = (await ctl.get("/portal/", token=None)).headers["content-security-policy"]
        assert f"form-action 'self' {allowed};" in policy

    control_plane(body)
