"""The portal's pages for a signed-in customer over the in-process control plane: every page
reads and writes through the customer API's handlers, so an admin writes, a member only reads
(and sees no write controls), and another org's key is not found; the CSRF token guards
every form; the secret of a new key is on its answer page only."""

from __future__ import annotations

import re
import zipfile
from io import BytesIO
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.unit.conftest import Control, ControlRunner
from tests.unit.control.customers.test_portal_oidc import FakeProvider
from tests.unit.control.customers.test_portal_pages import configure, csrf_of


async def sign_in_as(ctl: Control, provider: FakeProvider, sub: str) -> None:
    login = await ctl.get("/portal/login", token=None)
    query = {k: v[0] for k, v in parse_qs(urlsplit(login.headers["location"]).query).items()}
    provider.id_token = provider.sign(query["nonce"], sub=sub, name=sub)
    done = await ctl.get(
        "/portal/callback", token=None, params={"code": "c0de", "state": query["state"]}
    )
    assert done.status_code == 303, done.text


async def link(ctl: Control, name: str, clerk_org: str, people: dict[str, str]) -> str:
    """An org as Clerk's webhooks leave it: its Clerk id, its people's memberships."""
    org = await ctl.create_org(name=name)
    async with ctl.st.transaction() as tx:
        await tx.execute("UPDATE orgs SET external_id=? WHERE id=?", (clerk_org, org["id"]))
        for user_id, role in people.items():
            await tx.execute(
                "INSERT INTO customer_users (clerk_user_id, first_name, email, created_at, "
                "updated_at) VALUES (?, ?, ?, 1, 1)",
                (user_id, user_id, f"{user_id}@example.com"),
            )
            await tx.execute(
                "INSERT INTO customer_members (clerk_membership_id, org_id, clerk_user_id, "
                "role, created_at, updated_at) VALUES (?, ?, ?, ?, 1, 1)",
                (f"orgmem_{user_id}", org["id"], user_id, role),
            )
    return str(org["id"])


async def form_post(ctl: Control, path: str, page: httpx.Response, **fields: Any) -> httpx.Response:
    return await ctl.post(path, token=None, data={"csrf_token": csrf_of(page), **fields})


async def world(ctl: Control) -> tuple[FakeProvider, str, str]:
    provider = configure(ctl)
    org_a = await link(ctl, "Acme", "org_clerk_a", {"user_a": "admin", "user_b": "member"})
    org_b = await link(ctl, "Bravo", "org_clerk_b", {"user_c": "admin"})
    return provider, org_a, org_b


def test_an_admin_creates_rotates_edits_and_revokes_a_key(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        provider, org_a, _ = await world(ctl)
        await sign_in_as(ctl, provider, "user_a")
        keys = await ctl.get("/portal/keys", token=None)
        assert keys.status_code == 200 and "No keys yet" in keys.text
        assert 'action="/portal/keys"' in keys.text
        created = await form_post(ctl, "/portal/keys", keys, name="ci", allowed_ips="")
        assert created.status_code == 200, created.text
        secret = re.search(r'id="new-secret" readonly value="([^"]+)"', created.text)
        assert secret and secret.group(1).startswith("nk_live_")
        assert '<script src="/portal/static/portal.js" defer></script>' in created.text
        listed = (await ctl.get(f"/v1/orgs/{org_a}/keys")).json()["items"]
        assert [k["name"] for k in listed] == ["ci"]
        key_id = listed[0]["id"]
        keys = await ctl.get("/portal/keys", token=None)
        assert secret.group(1) not in keys.text  # shown once only
        rotated = await form_post(ctl, f"/portal/keys/{key_id}/rotate", keys, grace_seconds="3600")
        assert rotated.status_code == 200 and "Rotated key" in rotated.text
        assert 'id="grace-until"' in rotated.text  # the old secret works an hour more
        saved = await form_post(
            ctl, f"/portal/keys/{key_id}/allowlist", keys, allowed_ips="203.0.113.0/24\n"
        )
        assert saved.status_code == 303
        assert (await ctl.get(f"/v1/keys/{key_id}")).json()["allowed_ips"] == ["203.0.113.0/24"]
        bad = await form_post(ctl, f"/portal/keys/{key_id}/allowlist", keys, allowed_ips="nope")
        assert bad.status_code == 400 and "allowed_ips" in bad.text
        confirm = await ctl.get(f"/portal/keys/{key_id}/revoke", token=None)
        assert confirm.status_code == 200 and "Revoke key ci?" in confirm.text
        forged = await ctl.post(f"/portal/keys/{key_id}/revoke", token=None, data={})
        assert forged.status_code == 403
        revoked = await form_post(ctl, f"/portal/keys/{key_id}/revoke", confirm)
        assert revoked.status_code == 303
        assert (await ctl.get(f"/v1/keys/{key_id}")).json()["status"] == "revoked"
        audit = (await ctl.get("/v1/audit", params={"action": "key.create"})).json()["items"]
        assert audit[0]["actor"] == "clerk:user_a"

    control_plane(body)


def test_a_member_reads_and_sees_no_write_controls(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        provider, org_a, _ = await world(ctl)
        key = await ctl.create_key(org_a, name="shared")
        await sign_in_as(ctl, provider, "user_b")
        keys = await ctl.get("/portal/keys", token=None)
        assert keys.status_code == 200 and "shared" in keys.text
        for control in ("Create key", "Rotate", "Revoke", "Save allowlist"):
            assert control not in keys.text, control
        refused = await form_post(ctl, "/portal/keys", keys, name="mine")
        assert refused.status_code == 403 and "Only the organization" in refused.text
        refused = await form_post(ctl, f"/portal/keys/{key['id']}/rotate", keys)
        assert refused.status_code == 403
        settings = await ctl.get("/portal/settings", token=None)
        assert "Save retention" not in settings.text and "Close the account" not in settings.text
        assert "Leave me out of product analytics" in settings.text
        opted = await form_post(ctl, "/portal/settings/analytics", settings, opt_out="on")
        assert opted.status_code == 303
        assert (
            'id="f-opt-out" name="opt_out" checked'
            in (await ctl.get("/portal/settings", token=None)).text
        )
        assert (await ctl.get("/portal/export", token=None)).status_code == 403
        webhooks = await ctl.get("/portal/webhooks", token=None)
        assert "Add webhook" not in webhooks.text
        hook = (
            await ctl.post(f"/v1/orgs/{org_a}/webhooks", json={"url": "https://hooks.example/m"})
        ).json()
        page = await ctl.get(f"/portal/webhooks/{hook['id']}", token=None)
        assert page.status_code == 200 and "Rotate the signing secret" not in page.text
        assert "Change the webhook" not in page.text
        refused = await form_post(ctl, f"/portal/webhooks/{hook['id']}/rotate", page)
        assert refused.status_code == 403

    control_plane(body)


def test_another_orgs_key_is_not_found_and_never_listed(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        provider, org_a, _ = await world(ctl)
        key = await ctl.create_key(org_a, name="acme-secret-key")
        await sign_in_as(ctl, provider, "user_c")
        keys = await ctl.get("/portal/keys", token=None)
        assert "acme-secret-key" not in keys.text and "Bravo" in keys.text
        rotated = await form_post(ctl, f"/portal/keys/{key['id']}/rotate", keys)
        assert rotated.status_code == 404
        assert (await ctl.get(f"/portal/keys/{key['id']}/revoke", token=None)).status_code == 404

    control_plane(body)


def test_usage_billing_webhooks_settings_export_and_close(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        provider, org_a, _ = await world(ctl)
        await sign_in_as(ctl, provider, "user_a")
        usage = await ctl.get("/portal/usage", token=None)
        assert usage.status_code == 200 and 'data-source="/portal/usage.json"' in usage.text
        assert "/portal/download/requests?" in usage.text
        series = (await ctl.get("/portal/usage.json", token=None)).json()
        assert series["unit"] == "day" and series["t"] == [] and series["requests"] == []
        csv = await ctl.get("/portal/download/requests", token=None)
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        assert (await ctl.get("/portal/download/audit", token=None)).status_code == 404
        billing = await ctl.get("/portal/billing", token=None)
        assert billing.status_code == 200 and 'id="balance"' in billing.text

        hooks = await ctl.get("/portal/webhooks", token=None)
        added = await form_post(
            ctl, "/portal/webhooks", hooks, url="https://hooks.example/a", **{"event:task.*": "on"}
        )
        assert added.status_code == 200 and "whsec_" in added.text
        hook = (await ctl.get(f"/v1/orgs/{org_a}/webhooks")).json()["items"][0]
        assert hook["events"] == ["task.*"]
        page = await ctl.get(f"/portal/webhooks/{hook['id']}", token=None)
        assert page.status_code == 200 and "Nothing has been delivered" in page.text
        first = re.search(r'value="(whsec_[^"]+)"', added.text)
        rotated = await form_post(
            ctl, f"/portal/webhooks/{hook['id']}/rotate", page, grace_seconds="0"
        )
        second = re.search(r'value="(whsec_[^"]+)"', rotated.text)
        assert rotated.status_code == 200 and "has a new signing secret" in rotated.text
        assert first and second and first.group(1) != second.group(1)
        unknown = await form_post(
            ctl, f"/portal/webhooks/{hook['id']}/deliveries/evt_none/redeliver", page
        )
        assert unknown.status_code == 404
        edited = await form_post(
            ctl,
            f"/portal/webhooks/{hook['id']}/edit",
            page,
            url="https://hooks.example/b",
            **{"event:task.succeeded": "on"},
        )
        assert edited.status_code == 303
        changed = (await ctl.get(f"/v1/orgs/{org_a}/webhooks/{hook['id']}")).json()
        assert (changed["url"], changed["events"]) == (
            "https://hooks.example/b",
            ["task.succeeded"],
        )
        bad = await form_post(ctl, f"/portal/webhooks/{hook['id']}/edit", page, url="ftp://x")
        assert bad.status_code == 400 and 'role="alert"' in bad.text
        deleted = await form_post(ctl, f"/portal/webhooks/{hook['id']}/delete", hooks)
        assert deleted.status_code == 303

        settings = await ctl.get("/portal/settings", token=None)
        low_high = re.search(r'min="(\d+)" max="(\d+)"', settings.text)
        assert low_high, settings.text
        high = int(low_high.group(2))
        too_long = await form_post(
            ctl, "/portal/settings/retention", settings, video_retention_days=str(high + 1)
        )
        assert too_long.status_code == 400 and "video_retention_days" in too_long.text
        saved = await form_post(
            ctl, "/portal/settings/retention", settings, video_retention_days=low_high.group(1)
        )
        assert saved.status_code == 303
        org = (await ctl.get(f"/v1/orgs/{org_a}")).json()
        assert org["video_retention_days"] == int(low_high.group(1))

        export = await ctl.get("/portal/export", token=None)
        assert export.status_code == 200 and export.headers["content-type"] == "application/zip"
        assert "manifest.json" in zipfile.ZipFile(BytesIO(export.content)).namelist()

        wrong = await form_post(ctl, "/portal/settings/close", settings, confirm="org_nope")
        assert wrong.status_code == 400 and "Type the organization" in wrong.text
        assert (await ctl.get(f"/v1/orgs/{org_a}")).json()["status"] != "closed"
        closed = await form_post(ctl, "/portal/settings/close", settings, confirm=org_a)
        assert closed.status_code == 200 and "The account is closed" in closed.text
        assert (await ctl.get(f"/v1/orgs/{org_a}")).json()["status"] == "closed"

    control_plane(body)


def test_signed_out_or_unlinked_the_pages_send_the_browser_home(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        provider = configure(ctl)
        for path in ("/portal/keys", "/portal/usage", "/portal/settings"):
            answer = await ctl.get(path, token=None)
            assert answer.status_code == 303 and answer.headers["location"] == "/portal/"
        await sign_in_as(ctl, provider, "user_z")  # linked to no org
        answer = await ctl.get("/portal/keys", token=None)
        assert answer.status_code == 303 and answer.headers["location"] == "/portal/"

    control_plane(body)


def test_a_person_in_two_orgs_switches_between_them_and_no_further(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        provider, org_a, org_b = await world(ctl)
        async with ctl.st.transaction() as tx:  # user_a joins Bravo too, later: their newest
            await tx.execute(
                "INSERT INTO customer_members (clerk_membership_id, org_id, clerk_user_id, "
                "role, created_at, updated_at) VALUES ('orgmem_a_b', ?, 'user_a', 'member', 2, 2)",
                (org_b,),
            )
        await ctl.create_key(org_a, name="acme-key")
        await sign_in_as(ctl, provider, "user_a")
        keys = await ctl.get("/portal/keys", token=None)
        assert "(Bravo, member)" in keys.text and "acme-key" not in keys.text
        assert 'id="org-choice"' in keys.text and "Acme" in keys.text
        switched = await form_post(ctl, "/portal/org", keys, org="org_clerk_a")
        assert switched.status_code == 303
        keys = await ctl.get("/portal/keys", token=None)
        assert "(Acme, admin)" in keys.text and "acme-key" in keys.text
        # An org they are no member of is refused, and the session stays where it was.
        refused = await form_post(ctl, "/portal/org", keys, org="org_elsewhere")
        assert refused.status_code == 403
        assert "(Acme, admin)" in (await ctl.get("/portal/keys", token=None)).text
        # Without the session's CSRF token, nothing changes.
        forged = await ctl.post("/portal/org", token=None, data={"org": "org_clerk_b"})
        assert forged.status_code == 403

    control_plane(body)
