"""The dashboard over the in-process control plane: headers, login, sessions, CSRF, scopes."""

from __future__ import annotations

import re

import httpx

from control.ui import sessions
from tests.unit.conftest import ADMIN_TOKEN, Control, ControlRunner

CSP = "default-src 'self'; script-src 'self'"


def _csrf(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


async def _login(ctl: Control, token: str = ADMIN_TOKEN) -> httpx.Response:
    form = await ctl.get("/ui/login", token=None)
    return await ctl.post("/ui/login", token=None, data={"token": token, "csrf_token": _csrf(form)})


def test_pages_and_static_files_carry_the_strict_headers(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        for path in ("/ui/login", "/ui/static/vendor/htmx/htmx.min.js", "/ui/static/app.js"):
            response = await ctl.get(path, token=None)
            assert response.status_code == 200, path
            assert response.headers["content-security-policy"].startswith(CSP)
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["referrer-policy"] == "no-referrer"
            assert response.headers["cache-control"] == "no-store"
        page = await ctl.get("/ui/login", token=None)
        assert "<style" not in page.text and " style=" not in page.text
        assert re.search(r"<script>|<script [^>]*>[^<]", page.text) is None  # no inline script
        assert 'type="password"' in page.text and 'name="token"' in page.text
        # Signed out, a page sends the browser to the login form.
        assert (await ctl.get("/ui/orgs", token=None)).headers["location"] == "/ui/login"

    control_plane(body)


def test_login_keeps_only_a_hash_and_logout_refuses_the_old_cookie(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        signed_in = await _login(ctl)
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/ui/"
        cookie = signed_in.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        session_id = signed_in.cookies["nextapi_session"]
        rows = await ctl.rows("SELECT * FROM ui_sessions")
        assert len(rows) == 1 and session_id not in str(rows) and ADMIN_TOKEN not in str(rows)
        overview = await ctl.get("/ui/", token=None)
        assert overview.status_code == 200 and "Sign out" in overview.text
        logout = await ctl.post("/ui/logout", token=None, data={"csrf_token": _csrf(overview)})
        assert logout.status_code == 303
        assert await ctl.rows("SELECT * FROM ui_sessions") == []
        assert ctl.client is not None
        ctl.client.cookies.set("nextapi_session", session_id, path="/ui")
        refused = await ctl.get("/ui/orgs", token=None)
        assert refused.status_code == 303 and refused.headers["location"] == "/ui/login"

    control_plane(body)


def test_a_post_without_the_csrf_token_is_refused(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        form = await ctl.get("/ui/login", token=None)
        no_token = await ctl.post("/ui/login", token=None, data={"token": ADMIN_TOKEN})
        assert no_token.status_code == 403
        assert _csrf(form)
        await _login(ctl)
        made = await ctl.post("/ui/orgs", token=None, data={"name": "X", "email": "x@example.com"})
        assert made.status_code == 403
        wrong = await ctl.post(
            "/ui/orgs", token=None, data={"name": "X", "email": "x@example.com", "csrf_token": "x"}
        )
        assert wrong.status_code == 403
        assert await ctl.rows("SELECT * FROM orgs") == []

    control_plane(body)


def test_failed_logins_are_generic_audited_and_throttled(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        for _ in range(sessions.LOGIN_FAILURES):
            failed = await _login(ctl, "nat_wrong")
            assert failed.status_code == 401 and "Sign-in failed." in failed.text
        # The throttle now refuses the right token too, with the same words.
        throttled = await _login(ctl)
        assert throttled.status_code == 401 and "Sign-in failed." in throttled.text
        audited = await ctl.rows("SELECT * FROM audit WHERE action='ui.login_failed'")
        assert len(audited) == sessions.LOGIN_FAILURES + 1
        assert "nat_wrong" not in str(audited)
        assert await ctl.rows("SELECT * FROM ui_sessions") == []

    control_plane(body)


def test_revoking_the_admin_token_ends_its_sessions(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        token = await ctl.create_admin_token(["admin"])
        assert (await _login(ctl, token["token"])).status_code == 303
        assert (await ctl.get("/ui/orgs", token=None)).status_code == 200
        revoked = await ctl.delete(f"/v1/admin/tokens/{token['id']}")
        assert revoked.status_code == 200, revoked.text
        after = await ctl.get("/ui/orgs", token=None)
        assert after.status_code == 303 and after.headers["location"] == "/ui/login"

    control_plane(body)


def test_sessions_time_out_when_idle(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        await _login(ctl)
        async with ctl.st.transaction() as tx:
            await tx.execute(
                "UPDATE ui_sessions SET last_seen_at=last_seen_at-?", (sessions.IDLE_SECONDS + 1,)
            )
        assert (await ctl.get("/ui/orgs", token=None)).status_code == 303
        assert await ctl.rows("SELECT * FROM ui_sessions") == []

    control_plane(body)


def test_a_read_only_token_sees_no_controls(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org(name="Reader Co")
        reader = await ctl.create_admin_token(["read"])
        assert (await _login(ctl, reader["token"])).status_code == 303
        orgs = await ctl.get("/ui/orgs", token=None)
        assert "Reader Co" in orgs.text and "Create org" not in orgs.text
        page = await ctl.get(f"/ui/orgs/{org['id']}", token=None)
        assert page.status_code == 200 and "Create key" not in page.text
        assert "Revoke" not in page.text and "read-only" in page.text
        # Were a form posted anyway, the API's own scope check refuses it.
        refused = await ctl.post(
            "/ui/orgs",
            token=None,
            data={"name": "Y", "email": "y@example.com", "csrf_token": _csrf(orgs)},
        )
        assert refused.status_code == 403

    control_plane(body)


def test_orgs_are_searched_and_paged_on_the_server(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        for n in range(30):
            await ctl.create_org(name=f"Acme {n:02d}")
        await ctl.create_org(name="100%_literal")
        await _login(ctl)
        first = await ctl.get("/ui/orgs", token=None)
        assert "Acme 00" in first.text and "Acme 29" not in first.text and "Next page" in first.text
        found = await ctl.get("/ui/orgs", token=None, params={"q": "acme 2"})
        assert found.text.count('href="/ui/orgs/org_') == 10
        literal = await ctl.get("/v1/orgs", params={"q": "%_"})
        assert [o["name"] for o in literal.json()["items"]] == ["100%_literal"]
        empty = await ctl.get("/ui/orgs", token=None, params={"q": "nothing"})
        assert "No org matches" in empty.text

    control_plane(body)


def test_over_tls_the_cookie_is_secure_and_host_prefixed(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        assert ctl.client is not None
        ctl.client.base_url = httpx.URL("https://control")
        signed_in = await _login(ctl)
        assert signed_in.status_code == 303
        cookies = [c for c in signed_in.headers.get_list("set-cookie") if "session" in c]
        assert len(cookies) == 1 and cookies[0].startswith("__Host-nextapi_session=")
        assert "Secure" in cookies[0] and "Path=/;" in cookies[0] and "Domain" not in cookies[0]
        overview = await ctl.get("/ui/", token=None)
        assert overview.status_code == 200 and "Sign out" in overview.text

    control_plane(body)
