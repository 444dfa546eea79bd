"""The org page's keys (edit, rotate), billing and account tabs over the in-process control
plane: CSRF on every new form, read-only sessions, credits read exactly, rotation's secret shown
once, and closing an account only on its exact name."""

from __future__ import annotations

import html
import re
import time

import httpx
import pytest

from control.ui import formvalues
from control.ui.formvalues import FormError
from tests.unit.conftest import Control, ControlRunner
from tests.unit.control.test_ui import _csrf, _login


def _forms(page: httpx.Response) -> list[str]:
    """The actions of the page's POST forms other than signing out."""
    actions = re.findall(r'<form method="post" action="([^"]+)"', page.text)
    return [action for action in actions if action != "/ui/logout"]


def _alert(page: httpx.Response) -> str:
    match = re.search(r'role="alert"[^>]*>([^<]*)<', page.text)
    assert match, page.text
    return html.unescape(match.group(1))


async def _org_and_key(ctl: Control, name: str = "Tabs Co") -> tuple[dict, dict]:
    org = await ctl.create_org(name=name)
    key = await ctl.create_key(org["id"], name="tabs key")
    return org, key


async def _balance(ctl: Control, org_id: str) -> int:
    return (await ctl.get(f"/v1/orgs/{org_id}/balance")).json()["available"]


@pytest.mark.parametrize(
    ("text", "micro"),
    [("1.5", 1_500_000), ("0.000001", 1), ("12", 12_000_000), (" 2.250000 ", 2_250_000)],
)
def test_credits_typed_are_read_exactly_as_micro_credits(text: str, micro: int) -> None:
    assert formvalues.credits(text, "Amount") == micro


@pytest.mark.parametrize("text", ["1.2345678", "abc", "-1", "1e3", "", "1.", ".5", "1,5"])
def test_credits_that_cannot_be_read_say_so(text: str) -> None:
    with pytest.raises(FormError, match="Amount must be a number of credits with at most 6"):
        formvalues.credits(text, "Amount")


def test_every_new_form_refuses_a_post_without_the_csrf_token(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        org, key = await _org_and_key(ctl)
        await _login(ctl)
        forms = {
            f"/ui/keys/{key['id']}": {"name": "renamed", "allowed_ips": "10.0.0.0/8"},
            f"/ui/keys/{key['id']}/rotate": {"grace": "5", "grace_unit": "minutes"},
            f"/ui/orgs/{org['id']}/credits": {"amount": "1.5"},
            f"/ui/orgs/{org['id']}/close": {"confirm_name": org["name"]},
        }
        for path, data in forms.items():
            missing = await ctl.post(path, token=None, data=data)
            assert missing.status_code == 403, path
            wrong = await ctl.post(path, token=None, data=data | {"csrf_token": "forged"})
            assert wrong.status_code == 403, path
        (row,) = await ctl.rows("SELECT * FROM api_keys WHERE id=?", key["id"])
        assert (row["name"], row["allowed_ips"], row["rotated_at"]) == ("tabs key", "[]", None)
        assert await _balance(ctl, org["id"]) == 0
        assert (await ctl.get(f"/v1/orgs/{org['id']}")).json()["status"] == "active"

    control_plane(body)


def test_a_read_only_session_sees_the_tabs_without_a_form(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org, key = await _org_and_key(ctl)
        reader = await ctl.create_admin_token(["read"])
        await _login(ctl, reader["token"])
        for path in (
            f"/ui/orgs/{org['id']}",
            f"/ui/orgs/{org['id']}/billing",
            f"/ui/orgs/{org['id']}/account",
            f"/ui/keys/{key['id']}",
        ):
            page = await ctl.get(path, token=None)
            assert page.status_code == 200, path
            assert _forms(page) == [], path
            for control in ("Grant credits", "Rotate key", "Save key settings", "Revoke"):
                assert control not in page.text, (path, control)
        account = await ctl.get(f"/ui/orgs/{org['id']}/account", token=None)
        assert f"/ui/download?path=%2Fv1%2Forgs%2F{org['id']}%2Fexport" in account.text
        assert "Close account" not in account.text
        # Were the close form posted anyway, the API's own scope check refuses it.
        refused = await ctl.post(
            f"/ui/orgs/{org['id']}/close",
            token=None,
            data={"confirm_name": org["name"], "csrf_token": _csrf(account)},
        )
        assert refused.status_code == 403
        assert (await ctl.get(f"/v1/orgs/{org['id']}")).json()["status"] == "active"

    control_plane(body)


def test_the_keys_tab_shows_limits_and_no_request_log(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org(name="Limits Co")
        await ctl.create_key(
            org["id"],
            name="limited",
            allowed_ips=["203.0.113.0/24"],
            rate_limit={"requests_per_minute": 60, "concurrent_tasks": 2},
            spend_limit={"amount": 2_500_000, "period": "day"},
        )
        await _login(ctl)
        page = await ctl.get(f"/ui/orgs/{org['id']}", token=None)
        row = page.text.split('data-key="', 2)[1]
        assert "60/min" in row and "2 concurrent" in row and "/day</span>" not in row
        assert "2.500000 a day" in row and "<code>203.0.113.0/24</code>" in row
        assert "Request log" not in page.text and 'id="requests"' not in page.text
        csv_link = f"/ui/download?path=%2Fv1%2Forgs%2F{org['id']}%2Fkeys"
        assert csv_link in page.text
        keys_csv = await ctl.get(csv_link, token=None)
        assert keys_csv.status_code == 200 and "limited" in keys_csv.text

    control_plane(body)


def test_grants_are_read_exactly_and_a_bad_amount_is_refused_readably(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org(name="Grant Co")
        await _login(ctl)
        tab = await ctl.get(f"/ui/orgs/{org['id']}/billing", token=None)
        assert (
            "No ledger entries for this org." in tab.text and "No tasks for this org." in tab.text
        )
        csrf = _csrf(tab)
        path = f"/ui/orgs/{org['id']}/credits"
        granted = await ctl.post(
            path, token=None, data={"amount": "1.5", "reason": "pilot", "csrf_token": csrf}
        )
        assert granted.status_code == 303
        assert granted.headers["location"] == f"/ui/orgs/{org['id']}/billing?granted=1500000"
        ledger = (await ctl.get(f"/v1/orgs/{org['id']}/ledger")).json()["items"]
        assert [(e["kind"], e["amount"], e["reason"]) for e in ledger] == [
            ("grant", 1_500_000, "pilot")
        ]
        shown = await ctl.get(granted.headers["location"], token=None)
        assert "Granted 1.500000 credits." in shown.text and "pilot" in shown.text
        for bad, message in [
            ("1.0000001", "Amount must be a number of credits with at most 6 decimals"),
            ("ten", "Amount must be a number of credits with at most 6 decimals"),
            ("0", "Amount must be more than zero credits."),
            ("9007199255", "Amount must be at most 9,007,199,254.740992 credits."),
        ]:
            refused = await ctl.post(path, token=None, data={"amount": bad, "csrf_token": csrf})
            assert refused.status_code == 400, bad
            assert _alert(refused).startswith(message), refused.text
            assert f'value="{bad}"' in refused.text  # what was typed is kept
        assert await _balance(ctl, org["id"]) == 1_500_000

    control_plane(body)


def test_rotation_shows_the_new_secret_once_and_keeps_the_old_for_the_grace(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        _org, key = await _org_and_key(ctl)
        await _login(ctl)
        page = await ctl.get(f"/ui/keys/{key['id']}", token=None)
        before = time.time()
        rotated = await ctl.post(
            f"/ui/keys/{key['id']}/rotate",
            token=None,
            data={"grace": "5", "grace_unit": "minutes", "csrf_token": _csrf(page)},
        )
        assert rotated.status_code == 200, rotated.text
        secret = re.search(r'id="new-secret" readonly value="([^"]+)"', rotated.text)
        assert secret and secret.group(1).startswith(f"nk_live_{key['id']}_")
        assert secret.group(1) != key["key"] and 'id="grace-until"' in rotated.text
        (row,) = await ctl.rows("SELECT * FROM api_keys WHERE id=?", key["id"])
        assert before + 300 <= row["previous_valid_until"] <= time.time() + 300
        again = await ctl.get(f"/ui/keys/{key['id']}", token=None)
        assert secret.group(1) not in again.text and 'id="new-secret"' not in again.text
        too_long = await ctl.post(
            f"/ui/keys/{key['id']}/rotate",
            token=None,
            data={"grace": "8", "grace_unit": "days", "csrf_token": _csrf(page)},
        )
        assert too_long.status_code == 400
        assert "`grace_seconds` must be an integer from 0 to 604800" in _alert(too_long)
        assert 'id="new-secret"' not in too_long.text
        # A revoked key has no form left, yet a stale one posted is refused in words.
        assert (await ctl.delete(f"/v1/keys/{key['id']}")).status_code == 200
        stale = await ctl.post(
            f"/ui/keys/{key['id']}/rotate",
            token=None,
            data={"grace": "0", "grace_unit": "seconds", "csrf_token": _csrf(page)},
        )
        assert stale.status_code == 409 and _alert(stale) == "A revoked key cannot be rotated."
        assert _forms(stale) == []

    control_plane(body)


def test_a_key_edit_saves_limits_and_allowlists_and_shows_the_api_refusal(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        _org, key = await _org_and_key(ctl)
        await _login(ctl)
        page = await ctl.get(f"/ui/keys/{key['id']}", token=None)
        form = {
            "csrf_token": _csrf(page),
            "name": "edited",
            "status": "active",
            "requests_per_minute": "120",
            "requests_per_day": "",
            "concurrent_tasks": "3",
            "spend_amount": "2.5",
            "spend_period": "month",
            "allowed_ips": "198.51.100.7\n2001:db8::/32",
            "models": "",
            "expires_at": "",
        }
        saved = await ctl.post(f"/ui/keys/{key['id']}", token=None, data=form)
        assert saved.status_code == 303 and saved.headers["location"].endswith("?saved=1")
        stored = (await ctl.get(f"/v1/keys/{key['id']}")).json()
        assert stored["name"] == "edited"
        assert stored["rate_limit"] == {"requests_per_minute": 120, "concurrent_tasks": 3}
        assert stored["spend_limit"] == {"amount": 2_500_000, "period": "month"}
        assert stored["allowed_ips"] == ["198.51.100.7/32", "2001:db8::/32"]
        assert stored["models"] is None
        shown = await ctl.get(saved.headers["location"], token=None)
        assert "Saved." in shown.text and 'value="120"' in shown.text
        assert 'value="2.500000"' in shown.text and "2001:db8::/32</textarea>" in shown.text

        bad_ip = await ctl.post(
            f"/ui/keys/{key['id']}", token=None, data=form | {"allowed_ips": "not-an-ip"}
        )
        assert bad_ip.status_code == 400 and _alert(bad_ip).startswith("`allowed_ips`")
        assert "not-an-ip</textarea>" in bad_ip.text
        bad_limit = await ctl.post(
            f"/ui/keys/{key['id']}", token=None, data=form | {"requests_per_minute": "fast"}
        )
        assert bad_limit.status_code == 400
        assert _alert(bad_limit) == "Requests per minute must be a whole number (got 'fast')."
        after = (await ctl.get(f"/v1/keys/{key['id']}")).json()
        assert after["allowed_ips"] == stored["allowed_ips"]
        assert after["rate_limit"] == stored["rate_limit"]

    control_plane(body)


def test_closing_needs_the_exact_name(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org, key = await _org_and_key(ctl, name="Close Me Ltd")
        await _login(ctl)
        tab = await ctl.get(f"/ui/orgs/{org['id']}/account", token=None)
        path = f"/ui/orgs/{org['id']}/close"
        for wrong in ("close me ltd", "Close Me Ltd ", ""):
            refused = await ctl.post(
                path, token=None, data={"confirm_name": wrong, "csrf_token": _csrf(tab)}
            )
            assert refused.status_code == 400
            assert "nothing was closed" in _alert(refused)
        assert (await ctl.get(f"/v1/orgs/{org['id']}")).json()["status"] == "active"
        assert await ctl.rows("SELECT * FROM audit WHERE action='org.close'") == []
        closed = await ctl.post(
            path, token=None, data={"confirm_name": "Close Me Ltd", "csrf_token": _csrf(tab)}
        )
        assert closed.status_code == 200 and "The account is closed" in closed.text
        assert (await ctl.get(f"/v1/orgs/{org['id']}")).json()["status"] == "closed"
        assert (await ctl.get(f"/v1/keys/{key['id']}")).json()["status"] == "revoked"
        assert "Close account" not in closed.text and "Download the export" in closed.text
        billing = await ctl.get(f"/ui/orgs/{org['id']}/billing", token=None)
        assert "Grant credits" not in billing.text
        stale = await ctl.post(
            f"/ui/orgs/{org['id']}/credits",
            token=None,
            data={"amount": "1", "csrf_token": _csrf(tab)},
        )
        assert stale.status_code == 409 and _alert(stale) == "The org is closed."

    control_plane(body)
