"""The customer portal's sign-in in Debian's headless Chromium (playwright-python, never
`playwright install`) against a real OpenID Connect provider on loopback (oidc-provider, its
built-in login form) and a real control plane: signed out, sign in at the provider as user_a,
the home page names them, sign out (at the provider too), signed out again; a forged or
replayed callback gets a clear error page. Every test fails on a console error or a
Content-Security-Policy violation, and on any request off loopback; screenshots go to
tests/artifacts/ (the portal's own pages are checked by axe-core too)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.browser import ARTIFACTS, Watched, shoot
from tests.e2e.oidc_provider import USER_A, PortalWorld, portal  # noqa: F401 (a fixture)


@pytest.fixture
def watched_portal(browser: Browser, portal: PortalWorld) -> Iterator[Watched]:  # noqa: F811
    session = Watched(browser, portal.control_url)

    session.loopback_only()
    yield session
    session.close()
    assert session.errors == [], session.errors


def provider_shot(page: Page, name: str) -> None:
    """The provider's own page as the browser shows it (its markup is not ours to check)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"ui-{name}.png"), full_page=True)


def sign_in_at_the_provider(page: Page, portal: PortalWorld, login: str) -> None:  # noqa: F811
    page.wait_for_url(f"{portal.provider.issuer}/interaction/**")
    page.locator('input[name="login"]').fill(login)
    page.locator('input[name="password"]').fill("any password")
    provider_shot(page, "portal-provider-login")
    page.get_by_role("button", name="Sign-in").click()


def expected_error(watched: Watched, status: int, path: str) -> None:
    """A page the test means to be an error: the two failures the watched context recorded for
    it (its status, and Chromium's console line for it) are taken back, and only those."""
    expected = [
        f"{status} {watched.base_url}{path}",
        f"Failed to load resource: the server responded with a status of {status} (Bad Request)",
    ]
    for error in expected:
        assert error in watched.errors, watched.errors
        watched.errors.remove(error)


def test_customer_signs_in_at_the_provider_sees_their_name_and_signs_out(
    watched_portal: Watched,
    portal: PortalWorld,  # noqa: F811
) -> None:
    page = watched_portal.page
    sub, name, email = USER_A
    page.goto("/portal/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your NextAPI account")
    shoot(page, "portal-signin")

    page.get_by_role("link", name="Sign in").click()
    sign_in_at_the_provider(page, portal, sub)
    page.wait_for_url(f"{portal.control_url}/portal/")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Welcome, {name}")
    expect(page.locator("#user-email")).to_have_text(email)
    expect(page.locator("#no-org")).to_contain_text(
        "Your account is not linked to an organization yet"
    )
    shoot(page, "portal-home")

    cookies = {
        c["name"]: c for c in watched_portal.context.cookies(portal.control_url + "/portal/")
    }
    session = cookies["nextapi_portal"]
    assert session["httpOnly"] and session["sameSite"] == "Lax" and session["path"] == "/portal"
    assert not session["secure"]  # plain http on loopback; over TLS it is Secure (unit tests)
    at_callback = watched_portal.context.cookies(portal.control_url + "/portal/callback")
    assert "nextapi_portal_flow" not in {c["name"] for c in at_callback}  # one use: gone

    page.get_by_role("button", name="Sign out").click()
    # The provider's end_session_endpoint asks before it ends its own session.
    page.wait_for_url(f"{portal.provider.issuer}/session/end**")
    provider_shot(page, "portal-provider-logout")
    page.get_by_role("button", name="Yes, sign me out").click()
    page.wait_for_url(f"{portal.control_url}/portal/")
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    shoot(page, "portal-signed-out")
    assert "nextapi_portal" not in {
        c["name"] for c in watched_portal.context.cookies(portal.control_url + "/portal/")
    }

    # Signed out at the provider too: signing in asks for the login again.
    page.get_by_role("link", name="Sign in").click()
    page.wait_for_url(f"{portal.provider.issuer}/interaction/**")
    expect(page.locator('input[name="login"]')).to_be_visible()


def test_a_forged_or_replayed_callback_gets_a_clear_error_page(
    watched_portal: Watched,
    portal: PortalWorld,  # noqa: F811
) -> None:
    page = watched_portal.page
    # Forged: no sign-in was started in this browser.
    forged = "/portal/callback?code=forged&state=forged"
    response = page.goto(forged)
    assert response is not None and response.status == 400
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign-in failed")
    expect(page.get_by_role("alert")).to_contain_text("not started in this browser")
    shoot(page, "portal-callback-forged")
    expected_error(watched_portal, 400, forged)

    # A sign-in under way, answered with another state (a callback from someone else's flow).
    page.goto("/portal/")
    page.get_by_role("link", name="Sign in").click()
    page.wait_for_url(f"{portal.provider.issuer}/interaction/**")
    wrong_state = "/portal/callback?code=forged&state=someone-elses"
    response = page.goto(wrong_state)
    assert response is not None and response.status == 400
    expect(page.get_by_role("alert")).to_contain_text("state does not match")
    expected_error(watched_portal, 400, wrong_state)

    # Replayed: the real callback of a finished sign-in, sent again.
    callbacks: list[str] = []
    page.on("request", lambda r: "/portal/callback" in r.url and callbacks.append(r.url))
    page.goto("/portal/")
    page.get_by_role("link", name="Sign in").click()
    sign_in_at_the_provider(page, portal, "user_b")
    page.wait_for_url(f"{portal.control_url}/portal/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Brian Kernighan")
    assert len(callbacks) == 1
    replayed = callbacks[0].removeprefix(portal.control_url)
    response = page.goto(replayed)
    assert response is not None and response.status == 400
    expect(page.get_by_role("alert")).to_contain_text("start again")
    shoot(page, "portal-callback-replayed")
    expected_error(watched_portal, 400, replayed)
