"""The portal's pages over the in-process control plane, its OIDC provider played here
(test_portal_oidc's FakeProvider): not configured, signed out, the sign-in's cookies and
redirects, the session kept as a hash, the home page, signing out with CSRF, and over TLS."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from control.customers.portal.oidc import RelyingParty
from launch.control import portal_relying_party
from launch.settings import load
from tests.unit.conftest import Control, ControlRunner
from tests.unit.control.customers.test_portal_oidc import CLIENT, ISSUER, SECRET, FakeProvider


def configure(ctl: Control, **discovery: Any) -> FakeProvider:
    provider = FakeProvider(**discovery)
    assert ctl.app is not None
    ctl.app.state.portal = RelyingParty(
        ISSUER,
        CLIENT,
        SECRET,
        fetch=provider.fetch,
        post=provider.post,
        userinfo=provider.userinfo,
    )
    return provider


async def sign_in(ctl: Control, provider: FakeProvider) -> httpx.Response:
    """/portal/login, the provider's answer played, then /portal/callback."""
    login = await ctl.get("/portal/login", token=None)
    assert login.status_code == 303, login.text
    query = {k: v[0] for k, v in parse_qs(urlsplit(login.headers["location"]).query).items()}
    provider.id_token = provider.sign(query["nonce"])
    return await ctl.get(
        "/portal/callback", token=None, params={"code": "c0de", "state": query["state"]}
    )


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def test_without_an_issuer_the_portal_says_it_is_not_configured(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        for path in ("/portal/", "/portal/login", "/portal/callback?code=x&state=y"):
            page = await ctl.get(path, token=None)
            assert page.status_code == 503, path
            assert "The portal is not configured" in page.text
            assert "NEXTAPI_PORTAL_OIDC_ISSUER" in page.text
            assert page.headers["content-security-policy"].startswith("default-src 'self'")
        assert (await ctl.post("/portal/logout", token=None)).status_code == 503

    control_plane(body)


def test_signed_out_a_sign_in_page_under_the_strict_headers(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        configure(ctl)
        page = await ctl.get("/portal/", token=None)
        assert page.status_code == 200 and 'href="/portal/login"' in page.text
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        # The sign-out form is answered by a redirect to the provider: allowed as its target.
        assert f"form-action 'self' {ISSUER};" in policy
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        assert "<script" not in page.text and " style=" not in page.text
        assert "set-cookie" not in page.headers  # no cookie before the person signs in

    control_plane(body)


def test_signing_in_keeps_a_hash_of_the_cookie_and_the_flow_cookie_once(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        provider = configure(ctl)
        login = await ctl.get("/portal/login", token=None)
        assert login.headers["location"].startswith(f"{ISSUER}/auth?")
        flow_cookie = login.headers["set-cookie"].lower()
        assert flow_cookie.startswith("nextapi_portal_flow=")
        assert "httponly" in flow_cookie and "samesite=lax" in flow_cookie
        assert "path=/portal/callback" in flow_cookie and "max-age=600" in flow_cookie
        assert "secure" not in flow_cookie  # plain http (loopback in practice)

        callback = await sign_in(ctl, provider)
        assert callback.status_code == 303 and callback.headers["location"] == "/portal/"
        cookies = callback.headers.get_list("set-cookie")
        session_cookie = next(c for c in cookies if c.startswith("nextapi_portal="))
        assert "HttpOnly" in session_cookie and "Path=/portal" in session_cookie
        assert "samesite=lax" in session_cookie.lower()
        flow_gone = next(c for c in cookies if c.startswith("nextapi_portal_flow="))
        assert "Max-Age=0" in flow_gone or "expires=" in flow_gone.lower()
        session_id = callback.cookies["nextapi_portal"]
        rows = await ctl.rows("SELECT * FROM portal_sessions")
        assert len(rows) == 1 and session_id not in str(rows)
        assert rows[0]["sub"] == "user_a" and rows[0]["email"] == "ada@example.com"
        assert rows[0]["expires_at"] > rows[0]["created_at"]
        assert provider.id_token not in str(rows)

        home = await ctl.get("/portal/", token=None)
        assert home.status_code == 200 and "Welcome, Ada Lovelace" in home.text
        assert "ada@example.com" in home.text
        assert "Your account is not linked to an organization yet" in home.text
        audit = await ctl.rows("SELECT action, target FROM audit WHERE action LIKE 'portal.%'")
        assert audit == [{"action": "portal.login", "target": "user_a"}]

    control_plane(body)


def test_signing_out_needs_the_csrf_token_then_ends_the_session_at_the_provider_too(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        provider = configure(ctl)
        await sign_in(ctl, provider)
        home = await ctl.get("/portal/", token=None)
        refused = await ctl.post("/portal/logout", token=None, data={"csrf_token": "forged"})
        assert refused.status_code == 403 and "CSRF" in refused.text
        assert len(await ctl.rows("SELECT * FROM portal_sessions")) == 1
        out = await ctl.post("/portal/logout", token=None, data={"csrf_token": csrf_of(home)})
        assert out.status_code == 303
        location = urlsplit(out.headers["location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == f"{ISSUER}/session/end"
        assert parse_qs(location.query)["post_logout_redirect_uri"] == ["http://control/portal/"]
        assert await ctl.rows("SELECT * FROM portal_sessions") == []
        assert 'nextapi_portal=""' in out.headers["set-cookie"]
        signed_out = await ctl.get("/portal/", token=None)
        assert 'href="/portal/login"' in signed_out.text

    control_plane(body)


def test_a_callback_without_its_flow_is_a_clear_error_page(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        provider = configure(ctl)
        forged = await ctl.get("/portal/callback?code=c&state=s", token=None)
        assert forged.status_code == 400 and "Sign-in failed" in forged.text
        assert "not started in this browser" in forged.text
        assert provider.posted == []  # no code was sent to the provider
        assert await ctl.rows("SELECT * FROM portal_sessions") == []

    control_plane(body)


def test_over_tls_the_cookies_are_secure_and_prefixed(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        provider = configure(ctl)
        assert ctl.client is not None
        ctl.client.base_url = httpx.URL("https://control")
        login = await ctl.get("/portal/login", token=None)
        assert login.headers["set-cookie"].startswith("__Secure-nextapi_portal_flow=")
        assert "secure" in login.headers["set-cookie"].lower()
        redirect = parse_qs(urlsplit(login.headers["location"]).query)["redirect_uri"]
        assert redirect == ["https://control/portal/callback"]
        callback = await sign_in(ctl, provider)
        session_cookie = next(
            c
            for c in callback.headers.get_list("set-cookie")
            if c.startswith("__Secure-nextapi_portal=")
        )
        assert "Secure" in session_cookie and "Path=/portal" in session_cookie

    control_plane(body)


def test_the_settings_give_the_portal_its_client_with_the_secret_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert portal_relying_party(load([], {})) is None
    with pytest.raises(SystemExit, match="portal_oidc_client_id"):
        portal_relying_party(load([], {"NEXTAPI_PORTAL_OIDC_ISSUER": ISSUER}))
    with pytest.raises(SystemExit, match="portal_oidc_issuer"):
        load([], {"NEXTAPI_PORTAL_OIDC_ISSUER": "id.example"})  # not a URL
    monkeypatch.setenv("NEXTAPI_PORTAL_OIDC_CLIENT_SECRET", SECRET)
    environ = {"NEXTAPI_PORTAL_OIDC_ISSUER": ISSUER, "NEXTAPI_PORTAL_OIDC_CLIENT_ID": CLIENT}
    rp = portal_relying_party(load([], environ))
    assert rp is not None
    assert (rp.issuer, rp.client_id, rp.client_secret) == (ISSUER, CLIENT, SECRET)


def test_a_person_clerk_linked_to_an_org_sees_it_and_their_role(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        provider = configure(ctl)
        org = await ctl.create_org(name="Acme Studios")
        closed = await ctl.create_org(name="Old Co")
        async with ctl.st.transaction() as tx:
            await tx.execute("UPDATE orgs SET external_id='org_clerk_1' WHERE id=?", (org["id"],))
            await tx.execute(
                "UPDATE orgs SET external_id='org_clerk_0' WHERE id=?", (closed["id"],)
            )
            for membership, org_id, role, created in (
                ("orgmem_1", org["id"], "admin", 1.0),
                ("orgmem_0", closed["id"], "member", 2.0),  # newer, but its org is closed
            ):
                await tx.execute(
                    "INSERT INTO customer_members (clerk_membership_id, org_id, clerk_user_id, "
                    "role, created_at, updated_at) VALUES (?, ?, 'user_a', ?, ?, ?)",
                    (membership, org_id, role, created, created),
                )
        assert (await ctl.delete(f"/v1/orgs/{closed['id']}")).status_code in (200, 202, 204)
        await sign_in(ctl, provider)
        home = await ctl.get("/portal/", token=None)
        assert re.search(r'id="org-name">Acme Studios<', home.text), home.text
        assert re.search(r'id="org-role">admin<', home.text)
        assert "not linked to an organization" not in home.text

    control_plane(body)


def test_the_home_page_lets_its_sign_out_form_lead_to_the_providers_end_session_origin(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        elsewhere = {"end_session_endpoint": "https://logout.id.example/end"}
        await sign_in(ctl, configure(ctl, **elsewhere))
        configure(ctl, **elsewhere)  # a restart: nothing discovered yet
        home = await ctl.get("/portal/", token=None)
        policy = home.headers["content-security-policy"]
        assert f"form-action 'self' {ISSUER} https://logout.id.example;" in policy

    control_plane(body)
