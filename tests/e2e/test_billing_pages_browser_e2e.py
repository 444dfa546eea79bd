"""Buying credits through the pages, in Debian's headless Chromium, against a real gateway whose
Stripe client talks to the Stripe simulator (which delivers its signed events to the gateway's
webhook) and a real OIDC provider on loopback, with orgs and people provisioned by Clerk-shaped
webhooks. An org admin signs in to the portal, clicks Buy on a pack, pays on the simulator's
checkout page, is sent back to the billing page and sees the larger balance, the payment and
its invoice; a member sees them with no Buy button; an operator sees them on the dashboard's
billing tab and adds a pack on its packs page. The project's pages fail the test on a console
error, a CSP violation, an error answer or a request off loopback, and are checked by axe-core
(tests/artifacts/); the simulator's page is watched as well, but is not the project's to
check for accessibility."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Page, expect

from tests import clerk_events as ce
from tests.e2e.browser import ARTIFACTS, Watched, login, portal_sign_in, shoot
from tests.e2e.harness import Gateway, Simulator
from tests.e2e.oidc_provider import OidcProvider, free_port
from tests.e2e.payments import balance, paid_gateway, put_pack
from tests.e2e.stripe_sim import StripeSimulator

SECRET = ce.signing_secret()
PEOPLE = {  # tests/e2e/oidc/provider.mjs's accounts: their sub is the Clerk user id
    "user_a": ("Ada", "Lovelace", "ada@example.com", "org:admin"),
    "user_b": ("Brian", "Kernighan", "brian@example.com", "org:member"),
}
TEN_CREDITS = 10_000_000


@dataclass
class Shop:
    gw: Gateway
    stripe: StripeSimulator
    provider: OidcProvider
    org_id: str


@pytest.fixture(scope="module")
def shop(
    simulator: Simulator, stripe_sim: StripeSimulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shop]:
    with ExitStack() as stack:
        port = free_port()  # the provider's client names the portal's callback before it starts
        control_url = f"http://127.0.0.1:{port}"
        provider = OidcProvider(
            "billing-" + secrets.token_hex(4),
            secrets.token_urlsafe(24),
            [f"{control_url}/portal/callback"],
            [f"{control_url}/portal/"],
        )
        stack.callback(provider.stop)
        # On the port the provider expects.
        gw = paid_gateway(
            tmp_path_factory.mktemp("billing-pages"),
            simulator,
            stripe_sim,
            "--control-listen",
            f"127.0.0.1:{port}",
            NEXTAPI_CLERK_WEBHOOK_SECRET=SECRET,
            NEXTAPI_PORTAL_OIDC_ISSUER=provider.issuer,
            NEXTAPI_PORTAL_OIDC_CLIENT_ID=provider.client_id,
            NEXTAPI_PORTAL_OIDC_CLIENT_SECRET=provider.client_secret,
        )
        stack.callback(gw.stop)
        assert gw.control_url == control_url
        put_pack(gw, "ten", TEN_CREDITS, 300)  # 10 credits for 3.00 USD
        put_pack(gw, "fifty", 5 * TEN_CREDITS, 1250)
        ce.provision(gw.control_url, SECRET, "org_shop", PEOPLE, name="Shop Studios")
        listed = gw.admin.get("/v1/orgs", params={"q": "Shop Studios"}).json()["items"]
        org_id = next(org["id"] for org in listed if org["external_id"] == "org_shop")
        yield Shop(gw, stripe_sim, provider, org_id)


def watch(browser: Browser, shop: Shop) -> Watched:
    """A Watched context that also refuses any request off loopback."""
    session = Watched(browser, shop.gw.control_url)

    session.loopback_only()
    return session


@pytest.fixture
def watched_shop(browser: Browser, shop: Shop) -> Iterator[Watched]:
    session = watch(browser, shop)
    yield session
    session.close()
    assert session.errors == [], session.errors


def sign_in(page: Page, shop: Shop, login_name: str) -> None:
    portal_sign_in(page, shop.provider.issuer, shop.gw.control_url, login_name)


def credits_text(micro: int) -> str:
    whole, fraction = divmod(micro, 1_000_000)
    return f"{whole:,}.{fraction:06d}"


def bought(shop: Shop) -> bool:
    """The org's first payment is paid and its invoice is kept (Stripe's events applied)."""
    where = f"/v1/orgs/{shop.org_id}"
    payments = shop.gw.admin.get(f"{where}/payments").json()["items"]
    invoices = shop.gw.admin.get(f"{where}/invoices").json()["items"]
    return any(p["status"] == "paid" for p in payments) and any(
        i["status"] == "paid" for i in invoices
    )


def buy_in_the_portal(watched: Watched, shop: Shop) -> None:
    page = watched.page
    sign_in(page, shop, "user_a")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Billing").click()
    before = balance(shop.gw, shop.org_id)["available"]
    expect(page.locator("#balance")).to_have_text(credits_text(before))
    expect(page.locator("#packs")).to_contain_text("3.00 USD")
    shoot(page, "portal-billing-before")

    page.get_by_role("button", name="Buy 10 credits for 3.00 USD").click()
    page.wait_for_url(f"{shop.stripe.url}/checkout/**")
    expect(page.get_by_text("3.00 USD").first).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)  # the simulator's page: a picture, not the project's to audit
    page.screenshot(path=str(ARTIFACTS / "ui-stripe-simulator-checkout.png"), full_page=True)
    page.get_by_role("button", name="Pay").click()
    page.wait_for_url(re.compile(re.escape(shop.gw.control_url) + r"/portal/billing\?checkout="))
    assert "checkout=complete" in page.url and "session=cs_" in page.url
    expect(page.locator("#checkout-notice")).to_contain_text("payment went through")

    deadline = time.monotonic() + 20  # the simulator delivers its signed events meanwhile
    after = credits_text(before + TEN_CREDITS)
    while True:
        applied = bought(shop)  # asked before the reload, so the page shows what it says
        page.reload()
        if applied and page.locator("#balance").inner_text() == after:
            break
        assert time.monotonic() < deadline, page.locator("#balance").inner_text()
        time.sleep(0.2)
    expect(page.locator("#payments")).to_contain_text("3.00 USD")
    expect(page.locator("#payments")).to_contain_text("paid")
    expect(page.locator("#invoices")).to_contain_text("3.00 USD")
    expect(
        page.locator("#invoices").get_by_role("link", name=re.compile("^PDF of invoice"))
    ).to_be_visible()
    shoot(page, "portal-billing-bought")


def test_an_admin_buys_credits_in_the_portal_and_a_member_sees_them_without_buying(
    watched_shop: Watched, browser: Browser, shop: Shop
) -> None:
    buy_in_the_portal(watched_shop, shop)

    page = watched_shop.page
    page.get_by_label("Alert when the balance falls under").fill("2.5")
    page.get_by_label("Pack to recharge with").select_option("ten")
    page.get_by_role("button", name="Save low-balance settings").click()
    expect(page.locator("#saved")).to_be_visible()
    expect(page.locator("#low-threshold")).to_have_text("2.500000")
    settings = shop.gw.admin.get(f"/v1/orgs/{shop.org_id}/low-balance").json()
    assert (settings["threshold"], settings["pack"], settings["card_saved"]) == (
        2_500_000,
        "ten",
        False,
    )

    member = watch(browser, shop)
    try:
        sign_in(member.page, shop, "user_b")
        member.page.goto("/portal/billing")
        expect(member.page.locator("#packs")).to_contain_text("3.00 USD")
        expect(member.page.get_by_role("button", name=re.compile("^Buy"))).to_have_count(0)
        expect(member.page.get_by_role("button", name="Save low-balance settings")).to_have_count(0)
        expect(member.page.locator("#payments")).to_contain_text("paid")
        expect(member.page.locator("#low-threshold")).to_have_text("2.500000")
        shoot(member.page, "portal-billing-member")
    finally:
        member.close()
    assert member.errors == [], member.errors


def test_the_dashboard_shows_the_payment_and_invoice_and_adds_a_pack(
    watched_shop: Watched, browser: Browser, shop: Shop
) -> None:
    if not bought(shop):  # standing on its own: a purchase made in the portal first
        buyer = watch(browser, shop)
        try:
            buy_in_the_portal(buyer, shop)
        finally:
            buyer.close()
        assert buyer.errors == [], buyer.errors
    page = watched_shop.page
    login(page, shop.gw.admin_token)
    page.goto(f"/ui/orgs/{shop.org_id}/billing")
    expect(page.locator("#payments")).to_contain_text("3.00 USD")
    expect(page.locator("#payments")).to_contain_text("10.000000")
    expect(page.locator("#invoices")).to_contain_text("paid")
    expect(page.locator("#low-balance")).to_be_visible()
    expect(page.get_by_role("link", name="Download the payments as CSV")).to_be_visible()
    shoot(page, "dashboard-org-payments")

    # A refund of 1.00 of the 3.00 through the form: Stripe's event takes a third back.
    before = balance(shop.gw, shop.org_id)["available"]
    page.get_by_label(re.compile("^Amount to refund of cs_")).first.fill("1.00")
    page.get_by_role("button", name=re.compile("^Refund cs_")).first.click()
    expect(page.locator("#refund-notice")).to_be_visible()
    deadline = time.monotonic() + 20
    while balance(shop.gw, shop.org_id)["available"] != before - 3_333_333:
        assert time.monotonic() < deadline, "the refund's credits never went"
        time.sleep(0.05)
    page.reload()
    expect(page.locator("#payments")).to_contain_text("3.333333")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Packs").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Credit packs")
    page.get_by_label("Pack id").fill("studio")
    page.get_by_label("Name shown to customers").fill("Studio pack")
    page.get_by_label("Credits (up to 6 decimals)").fill("250")
    page.get_by_label("Price").fill("49.99")
    page.get_by_label("Currency", exact=True).select_option("eur")
    page.get_by_role("button", name="Save pack").click()
    expect(page.locator("#saved")).to_contain_text("studio")
    expect(page.locator('tr[data-pack="studio"]')).to_contain_text("49.99 EUR")
    pack = shop.gw.admin.get("/v1/credit-packs/studio").json()
    assert (pack["credits"], pack["amount"], pack["currency"]) == (250_000_000, 4999, "eur")
    shoot(page, "dashboard-packs")

    page.get_by_role("link", name="Delete studio").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Delete pack studio?")
    shoot(page, "dashboard-pack-delete")
    page.get_by_role("button", name="Delete pack studio").click()
    expect(page.locator("#deleted")).to_contain_text("studio")
    expect(page.locator('tr[data-pack="studio"]')).to_have_count(0)
    assert shop.gw.admin.get("/v1/credit-packs/studio").status_code == 404
