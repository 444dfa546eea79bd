"""Accounts from Clerk (control/customers/): Clerk-shaped events signed by Svix's own library,
through the webhook route of an in-process control plane; out of order, replayed, deleted."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from control.customers.accounts import Membership, member_of, org_by_external_id
from control.jobs.retention import DAY, Retention
from tests import clerk_events as ce
from tests.unit.conftest import Control, ControlRunner, assert_error

URL = "/v1/integrations/clerk/webhook"
ORG = "org_2nR3xKq7FvY1mWp9"
ALICE, BOB = "user_2nAliceQ8", "user_2nBobZ4k"
SECRET = ce.signing_secret()


@pytest.fixture(autouse=True)
def clerk_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTAPI_CLERK_WEBHOOK_SECRET", SECRET)


async def send(
    ctl: Control, event_type: str, data: dict[str, Any], msg_id: str | None = None
) -> httpx.Response:
    body, headers = ce.signed(SECRET, ce.event(event_type, data), msg_id)
    response = await ctl.post(URL, content=body, headers=headers, token=None)
    assert response.status_code == 200, response.text
    return response


async def provision(ctl: Control, org_name: str = "Acme Video") -> str:
    """An org with Alice as admin and Bob as member, in Clerk's usual order."""
    org = ce.organization(ORG, org_name)
    await send(ctl, "organization.created", org)
    await send(ctl, "user.created", ce.user(ALICE, "Alice", "Liddell", "alice@acme.example"))
    await send(ctl, "user.created", ce.user(BOB, "Bob", "Builder", "bob@acme.example"))
    await send(
        ctl, "organizationMembership.created", ce.membership("orgmem_a", org, ALICE, "org:admin")
    )
    await send(
        ctl, "organizationMembership.created", ce.membership("orgmem_b", org, BOB, "org:member")
    )
    found = await org_by_external_id(ctl.st.db, ORG)
    assert found is not None
    return found["id"]


async def user_row(ctl: Control, clerk_user_id: str) -> dict[str, Any] | None:
    rows = await ctl.rows(
        "SELECT clerk_user_id, first_name, last_name, email, created_at, updated_at, "
        "analytics_opt_out FROM customer_users WHERE clerk_user_id=?",
        clerk_user_id,
    )
    return rows[0] if rows else None


def test_an_org_its_admin_and_its_member_are_provisioned(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org_id = await provision(ctl)
        assert await member_of(ctl.st.db, ALICE, ORG) == Membership(org_id, "admin")
        assert await member_of(ctl.st.db, BOB, ORG) == Membership(org_id, "member")
        assert await member_of(ctl.st.db, BOB, "org_other") is None
        org = (await ctl.get(f"/v1/orgs/{org_id}")).json()
        # Its name from Clerk; its email its first admin's primary address.
        assert (org["name"], org["email"], org["status"]) == (
            "Acme Video",
            "alice@acme.example",
            "active",
        )
        assert any(o["id"] == org_id for o in ctl.snapshot["orgs"])  # the edges know it
        # The name and email, nothing more of what Clerk sent.
        alice = await user_row(ctl, ALICE)
        assert alice is not None
        times = {"created_at": alice.pop("created_at"), "updated_at": alice.pop("updated_at")}
        assert alice.pop("analytics_opt_out") == 0  # their own choice later, not Clerk's data
        assert alice == {
            "clerk_user_id": ALICE,
            "first_name": "Alice",
            "last_name": "Liddell",
            "email": "alice@acme.example",
        }
        assert all(isinstance(t, float) for t in times.values())
        audit = await ctl.rows("SELECT actor, action, target FROM audit WHERE actor='clerk'")
        assert {"actor": "clerk", "action": "org.create", "target": org_id} in audit

    control_plane(body)


def test_roles_other_than_admin_are_members(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = ce.organization(ORG, "Acme")
        data = ce.membership("orgmem_x", org, ALICE, "org:billing_manager")
        await send(ctl, "organizationMembership.created", data)
        assert (await member_of(ctl.st.db, ALICE, ORG)).role == "member"
        promoted = ce.membership("orgmem_x", org, ALICE, "org:admin", updated=ce.T0 + 5)
        await send(ctl, "organizationMembership.updated", promoted)
        assert (await member_of(ctl.st.db, ALICE, ORG)).role == "admin"

    control_plane(body)


def test_a_replayed_message_changes_nothing(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org_id = await provision(ctl)
        renamed = ce.organization(ORG, "Renamed", updated=ce.T0 + 10)
        await send(ctl, "organization.updated", renamed, msg_id="msg_rename")
        # The same message again, with a newer payload: its id was applied, so nothing changes.
        again = ce.organization(ORG, "Replayed", updated=ce.T0 + 20)
        replay = await send(ctl, "organization.updated", again, msg_id="msg_rename")
        assert replay.json() == {"received": True, "replay": True}
        assert (await ctl.get(f"/v1/orgs/{org_id}")).json()["name"] == "Renamed"

    control_plane(body)


def test_a_membership_before_its_organization_and_user(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = ce.organization(ORG, "From the membership")
        data = ce.membership(
            "orgmem_a", org, ALICE, "org:admin", first="Al", identifier="alice@acme.example"
        )
        await send(ctl, "organizationMembership.created", data)
        membership = await member_of(ctl.st.db, ALICE, ORG)
        assert membership is not None and membership.role == "admin"
        assert (await user_row(ctl, ALICE))["first_name"] == "Al"
        # The organization's and the user's own events, late: the same org, the user's data.
        await send(ctl, "organization.created", org)
        await send(ctl, "user.created", ce.user(ALICE, "Alice", "Liddell", "alice@acme.example"))
        assert len(await ctl.rows("SELECT id FROM orgs WHERE external_id=?", ORG)) == 1
        assert (await user_row(ctl, ALICE))["first_name"] == "Alice"
        org_row = await org_by_external_id(ctl.st.db, ORG)
        assert org_row["email"] == "alice@acme.example"

    control_plane(body)


def test_an_older_update_never_overwrites_a_newer_one(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        await send(ctl, "organization.updated", ce.organization(ORG, "Newest", updated=ce.T0 + 9))
        await send(ctl, "organization.created", ce.organization(ORG, "First"))
        await send(ctl, "organization.updated", ce.organization(ORG, "Middle", updated=ce.T0 + 5))
        assert (await org_by_external_id(ctl.st.db, ORG))["name"] == "Newest"
        newer = ce.user(ALICE, "Alice", "Newer", "new@acme.example", updated=ce.T0 + 9)
        await send(ctl, "user.updated", newer)
        await send(ctl, "user.created", ce.user(ALICE, "Alice", "Older", "old@acme.example"))
        row = await user_row(ctl, ALICE)
        assert (row["last_name"], row["email"]) == ("Newer", "new@acme.example")

    control_plane(body)


def test_a_deleted_org_is_closed_and_stays_deleted(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org_id = await provision(ctl)
        key = await ctl.create_key(org_id)
        await send(ctl, "organization.deleted", ce.deleted("organization", ORG))
        org = (await ctl.get(f"/v1/orgs/{org_id}")).json()
        assert org["status"] == "closed" and org["closed_at"] is not None
        assert (await ctl.get(f"/v1/keys/{key['id']}")).json()["status"] == "revoked"
        assert await member_of(ctl.st.db, ALICE, ORG) is None
        # Late: a create, an update, a membership. None brings it back or makes another.
        await send(ctl, "organization.created", ce.organization(ORG, "Back", updated=ce.T0 + 99))
        late = ce.membership("orgmem_c", ce.organization(ORG, "Back", ce.T0 + 99), BOB, "org:admin")
        await send(ctl, "organizationMembership.created", late)
        rows = await ctl.rows("SELECT id, name, status FROM orgs WHERE external_id=?", ORG)
        assert rows == [{"id": org_id, "name": "Acme Video", "status": "closed"}]
        assert await member_of(ctl.st.db, BOB, ORG) is None
        closes = await ctl.rows("SELECT actor FROM audit WHERE action='org.close'")
        assert closes == [{"actor": "clerk"}]

    control_plane(body)


def test_an_org_deleted_before_it_was_created_never_appears(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        await send(ctl, "organization.deleted", ce.deleted("organization", ORG))
        await send(ctl, "organization.created", ce.organization(ORG, "Ghost"))
        assert await org_by_external_id(ctl.st.db, ORG) is None

    control_plane(body)


def test_a_deleted_user_is_erased_at_once_and_stays_so(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org_id = await provision(ctl)
        await send(ctl, "user.deleted", ce.deleted("user", ALICE))
        assert await member_of(ctl.st.db, ALICE, ORG) is None
        assert await user_row(ctl, ALICE) is None
        # The org's email was hers: it goes too (no other admin: empty until one comes).
        assert (await ctl.get(f"/v1/orgs/{org_id}")).json()["email"] == ""
        assert await ctl.rows("SELECT 1 FROM customer_members WHERE clerk_user_id=?", ALICE) == []
        # Late events about her are refused.
        late_user = ce.user(ALICE, "Alice", "Liddell", "alice@acme.example", updated=ce.T0 + 50)
        await send(ctl, "user.updated", late_user)
        org = ce.organization(ORG, "Acme Video")
        late = ce.membership("orgmem_z", org, ALICE, "org:admin", identifier="alice@acme.example")
        await send(ctl, "organizationMembership.created", late)
        assert await user_row(ctl, ALICE) is None and await member_of(ctl.st.db, ALICE, ORG) is None
        # Bob becomes admin: the org's email is his.
        promoted = ce.membership("orgmem_b", org, BOB, "org:admin", updated=ce.T0 + 60)
        await send(ctl, "organizationMembership.updated", promoted)
        assert (await ctl.get(f"/v1/orgs/{org_id}")).json()["email"] == "bob@acme.example"
        assert (await member_of(ctl.st.db, BOB, ORG)).role == "admin"

    control_plane(body)


def test_a_deleted_membership_ends_and_stays_ended(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        await provision(ctl)
        org = ce.organization(ORG, "Acme Video")
        gone = ce.membership("orgmem_b", org, BOB, "org:member", updated=ce.T0 + 5)
        await send(ctl, "organizationMembership.deleted", gone)
        assert await member_of(ctl.st.db, BOB, ORG) is None
        late = ce.membership("orgmem_b", org, BOB, "org:admin", updated=ce.T0 + 9)
        await send(ctl, "organizationMembership.updated", late)
        assert await member_of(ctl.st.db, BOB, ORG) is None
        assert await user_row(ctl, BOB) is not None  # still a Clerk user

    control_plane(body)


def test_an_unknown_event_type_is_recorded_and_ignored(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        response = await send(ctl, "session.created", {"id": "sess_1"}, msg_id="msg_session")
        assert response.json() == {"received": True, "handled": False}
        assert await ctl.rows("SELECT event_type FROM clerk_messages") == [
            {"event_type": "session.created"}
        ]

    control_plane(body)


def test_bad_stale_and_unsigned_webhooks_are_400s_changing_nothing(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        payload = ce.event("organization.created", ce.organization(ORG, "Forged"))
        forged_body, forged = ce.signed(ce.signing_secret(), payload)
        stale_body, stale = ce.signed(SECRET, payload, age=timedelta(minutes=6))
        good_body, good = ce.signed(SECRET, payload)
        cases = [
            (forged_body, forged, ("No matching signature",)),
            (stale_body, stale, ("too old",)),
            (good_body + b" ", good, ("No matching signature",)),  # the body changed
            (good_body, {k: v for k, v in good.items() if k != "svix-signature"}, ("Missing",)),
            # svix 1.x calls it malformed; 2.x finds no signature in it.
            (good_body, good | {"svix-signature": "v1"}, ("malformed", "No matching signature")),
        ]
        for content, headers, reasons in cases:
            response = await ctl.post(URL, content=content, headers=headers, token=None)
            assert_error(response, 400, "InvalidSignature")
            message = response.json()["error"]["message"]
            assert any(reason in message for reason in reasons), message
        assert await org_by_external_id(ctl.st.db, ORG) is None
        assert await ctl.rows("SELECT * FROM clerk_messages") == []

    control_plane(body)


def test_without_a_secret_the_route_fails_closed(
    control_plane: ControlRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(ctl: Control) -> None:
        content, headers = ce.signed(
            SECRET, ce.event("organization.created", ce.organization(ORG, "X"))
        )
        monkeypatch.delenv("NEXTAPI_CLERK_WEBHOOK_SECRET")
        response = await ctl.post(URL, content=content, headers=headers, token=None)
        assert_error(response, 503, "NotConfigured")
        assert "NEXTAPI_CLERK_WEBHOOK_SECRET" in response.json()["error"]["message"]
        monkeypatch.setenv("NEXTAPI_CLERK_WEBHOOK_SECRET", "whsec_not*base64")
        response = await ctl.post(URL, content=content, headers=headers, token=None)
        assert_error(response, 503, "NotConfigured")
        assert "whsec_not" not in response.text  # the secret is never echoed
        assert await org_by_external_id(ctl.st.db, ORG) is None

    control_plane(body)


def test_a_body_past_1_mib_is_refused_unread(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        content, headers = ce.signed(SECRET, {"type": "user.created", "pad": "x" * (1 << 20)})
        response = await ctl.post(URL, content=content, headers=headers, token=None)
        assert_error(response, 413, "PayloadTooLarge")

        async def chunks():  # no Content-Length: counted as it arrives
            yield content

        response = await ctl.post(URL, content=chunks(), headers=headers, token=None)
        assert_error(response, 413, "PayloadTooLarge")
        assert await ctl.rows("SELECT * FROM clerk_messages") == []

    control_plane(body)


def test_a_signed_event_missing_its_fields_is_a_400(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        content, headers = ce.signed(SECRET, ce.event("organization.created", {"id": ORG}))
        response = await ctl.post(URL, content=content, headers=headers, token=None)
        assert_error(response, 400, "InvalidParameter")
        assert await ctl.rows("SELECT * FROM clerk_messages") == []  # Svix may retry it

    control_plane(body)


def test_retention_purges_a_deleted_orgs_people_after_30_days(tmp_path: Path) -> None:
    from tests.unit.conftest import ADMIN_TOKEN

    async def main() -> None:
        ctl = Control(tmp_path / "data", ADMIN_TOKEN)
        await ctl.start()
        try:
            org_id = await provision(ctl)
            other = ce.organization("org_2other", "Other")
            await send(
                ctl,
                "organizationMembership.created",
                ce.membership("orgmem_o", other, BOB, "org:member"),
            )
            await send(ctl, "organization.deleted", ce.deleted("organization", ORG))
            closed_at = (await org_by_external_id(ctl.st.db, ORG))["closed_at"]
            early = await Retention(ctl.st, clock=lambda: closed_at + 29 * DAY).purge()
            assert early.counts["closed_orgs"] == 0
            late = await Retention(ctl.st, clock=lambda: closed_at + 31 * DAY).purge()
            assert late.counts["closed_account.customer_members"] == 2
            assert late.counts["closed_account.customer_users_unattached"] == 1
            assert await user_row(ctl, ALICE) is None  # in no other org
            assert await user_row(ctl, BOB) is not None  # still in Other
            purged = (await ctl.get(f"/v1/orgs/{org_id}")).json()
            assert (purged["name"], purged["email"]) == ("(deleted)", "")
            again = await Retention(ctl.st, clock=lambda: closed_at + 32 * DAY).purge()
            assert again.counts["closed_orgs"] == 0  # purged once
        finally:
            await ctl.stop()

    asyncio.run(main())
