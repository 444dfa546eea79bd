"""What the control plane does with input meant to break it: clear 4xx answers, never a 500,
and no unbounded work per request (issue 21's smaller defects)."""

from __future__ import annotations

import base64

from control.api.access import ADMIN_FAILURES_PER_MINUTE
from control.store import adminauth
from control.store.wallet import MAX_BALANCE
from tests.unit.conftest import ADMIN_TOKEN, Control, ControlRunner, assert_error
from tests.unit.control.test_ui import _csrf


def test_an_org_search_longer_than_any_name_is_a_400(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        await ctl.create_org(name="Acme")
        # 50,000 characters: SQLite's LIKE refused it with "pattern too complex", a 500.
        refused = await ctl.get("/v1/orgs", params={"q": "a" * 50_000})
        assert_error(refused, 400, "InvalidParameter")
        assert "`q`" in refused.json()["error"]["message"]
        found = await ctl.get("/v1/orgs", params={"q": "cm"})
        assert [org["name"] for org in found.json()["items"]] == ["Acme"]
        longest = await ctl.get("/v1/orgs", params={"q": "x" * 200})
        assert longest.status_code == 200 and longest.json()["items"] == []

    control_plane(body)


def test_a_cursor_of_deeply_nested_lists_is_a_400_on_every_list(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        # Short enough to be read, nested deep enough to exhaust the JSON parser's recursion.
        deep = base64.urlsafe_b64encode(b"[" * 10_000 + b"]" * 10_000).decode().rstrip("=")
        shallow_enough = base64.urlsafe_b64encode(b"[" * 300 + b"]" * 300).decode().rstrip("=")
        for path in ("/v1/orgs", f"/v1/orgs/{org['id']}/requests", "/v1/audit"):
            for cursor in (deep, shallow_enough, "x" * 5000):
                refused = await ctl.get(path, params={"cursor": cursor})
                assert_error(refused, 400, "InvalidParameter")

    control_plane(body)


def test_the_decoder_survives_nesting_within_the_cursor_length() -> None:
    # A cursor of the longest accepted length, all brackets: the RecursionError path.
    from control.http import MAX_CURSOR_CHARS, ApiError, decode_cursor

    raw = b"[" * (MAX_CURSOR_CHARS // 2) + b"]" * (MAX_CURSOR_CHARS // 2)
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")[:MAX_CURSOR_CHARS]
    try:
        decode_cursor(cursor, str, float)
    except ApiError as exc:
        assert exc.status == 400
    else:
        raise AssertionError("a nested cursor was accepted")


def test_a_grant_that_would_pass_the_balance_ceiling_is_refused(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        path = f"/v1/orgs/{org['id']}/credits"
        # The largest grant, twice, fills the ledger exactly to its ceiling ...
        half = MAX_BALANCE // 2
        for _ in range(2):
            assert (await ctl.post(path, json={"amount": half})).status_code == 201
        # ... past it, even by one micro-credit, nothing is written.
        refused = await ctl.post(path, json={"amount": 1})
        assert_error(refused, 400, "InvalidParameter")
        assert "at most 0 more" in refused.json()["error"]["message"]
        balance = (await ctl.get(f"/v1/orgs/{org['id']}/balance")).json()
        assert balance == {"available": MAX_BALANCE, "reserved": 0}
        assert isinstance(balance["available"], int)
        grants = await ctl.rows("SELECT amount FROM ledger WHERE org_id=?", org["id"])
        assert [row["amount"] for row in grants] == [half, half]

    control_plane(body)


def test_wrong_admin_tokens_are_throttled_per_address_and_cost_no_hashing_twice(
    control_plane: ControlRunner, monkeypatch
) -> None:
    verified: list[str] = []
    real_verify = adminauth.keys.verify_secret

    def counting_verify(stored: str, presented: str) -> bool:
        verified.append(presented)
        return real_verify(stored, presented)

    monkeypatch.setattr(adminauth.keys, "verify_secret", counting_verify)

    async def body(ctl: Control) -> None:
        assert (await ctl.get("/v1/orgs")).status_code == 200  # the admin's token, verified
        # The same wrong token again: refused without a second verification.
        for _ in range(3):
            assert_error(await ctl.get("/v1/orgs", token="nat_wrong_0"), 401)
        assert verified.count("nat_wrong_0") == 1
        # Different wrong tokens from one address (every failure counts, the three above too):
        # after the budget, 429 without verifying.
        for n in range(1, ADMIN_FAILURES_PER_MINUTE - 2):
            assert_error(await ctl.get("/v1/orgs", token=f"nat_wrong_{n}"), 401)
        before = len(verified)
        throttled = await ctl.get("/v1/orgs", token="nat_wrong_again")
        assert_error(throttled, 429, "TooManyRequests")
        assert int(throttled.headers["retry-after"]) > 0
        assert len(verified) == before
        # A token verified before keeps working from the same address: the throttle stands
        # before a verification, not before the cache.
        assert (await ctl.get("/v1/orgs")).status_code == 200
        # A request without a token is a plain 401, and never counted.
        assert_error(await ctl.get("/v1/orgs", token=None), 401)

    control_plane(body)


def test_the_login_form_token_must_be_one_the_server_signed(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        assert ctl.client is not None
        # An attacker who can plant a cookie picks both halves of the double submit.
        planted = "chosen-by-the-attacker"
        ctl.client.cookies.set("nextapi_login", planted, path="/ui/login")
        forged = await ctl.post(
            "/ui/login", token=None, data={"token": ADMIN_TOKEN, "csrf_token": planted}
        )
        assert forged.status_code == 403
        assert await ctl.rows("SELECT * FROM ui_sessions") == []
        # A form the server served signs in.
        ctl.client.cookies.clear()
        form = await ctl.get("/ui/login", token=None)
        token = _csrf(form)
        assert "." in token
        signed_in = await ctl.post(
            "/ui/login", token=None, data={"token": ADMIN_TOKEN, "csrf_token": token}
        )
        assert signed_in.status_code == 303

    control_plane(body)


def test_the_search_and_cursor_limits_are_in_the_openapi_document(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        document = (await ctl.get("/openapi.json", token=None)).json()
        params = {p["name"]: p for p in document["paths"]["/v1/orgs"]["get"]["parameters"]}
        assert params["q"]["schema"]["maxLength"] == 200
        assert params["cursor"]["schema"]["maxLength"] == 1024

    control_plane(body)


def test_a_token_revoked_while_it_is_verified_is_not_cached(
    control_plane: ControlRunner, monkeypatch
) -> None:
    """A revocation that commits while the token's verification runs (in a thread) must apply
    on the next call, not after the 5-minute cache."""
    verified: list[str] = []
    real_verify = adminauth.keys.verify_secret

    async def body(ctl: Control) -> None:
        made = await ctl.create_admin_token(["read"])
        token = made["token"]

        def verify_while_revoked(stored: str, presented: str) -> bool:
            verified.append(presented)
            ok = real_verify(stored, presented)
            if presented == token and len(verified) == 1:
                ctl.st.admin.forget()  # what the revocation does once it has committed
            return ok

        monkeypatch.setattr(adminauth.keys, "verify_secret", verify_while_revoked)
        assert (await ctl.get("/v1/orgs", token=token)).status_code == 200
        first = verified.count(token)
        assert (await ctl.get("/v1/orgs", token=token)).status_code == 200
        assert verified.count(token) > first  # verified again: nothing was cached
        third = verified.count(token)
        assert (await ctl.get("/v1/orgs", token=token)).status_code == 200
        assert verified.count(token) == third  # with no change meanwhile, cached as before

    control_plane(body)
