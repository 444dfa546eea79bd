"""Accounts from Clerk end to end: Clerk-shaped webhooks signed by Svix's own library, posted to a
real `run_proxy.py` (edge and control plane), read back through the admin API and the database
file: provisioning, replays, events out of order, bad and stale signatures, no secret, and an
organization deleted in Clerk closing its org (its keys stop at the edge)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import clerk_events as ce
from tests.e2e.harness import Gateway, Simulator, address, control_process

URL = "/v1/integrations/clerk/webhook"
TASKS = "/api/v3/contents/generations/tasks"
SECRET = ce.signing_secret()


@pytest.fixture(scope="module")
def clerk_gateway(
    simulator: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    gw = Gateway(
        tmp_path_factory.mktemp("clerk"),
        simulator.url,
        simulator.api_key,
        env={"NEXTAPI_CLERK_WEBHOOK_SECRET": SECRET},
    )
    yield gw
    gw.stop()


def post(
    gw: Gateway,
    event_type: str,
    data: dict[str, Any],
    msg_id: str | None = None,
    *,
    secret: str = SECRET,
    age: timedelta = timedelta(0),
) -> httpx.Response:
    body, headers = ce.signed(secret, ce.event(event_type, data), msg_id, age=age)
    # No admin token: Clerk has none.
    return httpx.post(gw.control_url + URL, content=body, headers=headers, timeout=10)


def applied(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "handled": True}


def org_of(gw: Gateway, clerk_org_id: str) -> dict[str, Any] | None:
    """The org a Clerk organization is, through the admin API (found by the name the tests
    give it: the Clerk id), or None."""
    found = gw.admin.get("/v1/orgs", params={"q": clerk_org_id}).json()["items"]
    assert len(found) <= 1, found
    return found[0] if found else None


def members(gw: Gateway, org_id: str) -> dict[str, str]:
    """Clerk user id → role, from the database file (no API shows members yet)."""
    path = Path(gw.data_dir) / "nextapi.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT clerk_user_id, role FROM customer_members WHERE org_id=?", (org_id,)
        ).fetchall()
    return dict(rows)


def names(gw: Gateway, clerk_user_id: str) -> tuple[str, str, str] | None:
    path = Path(gw.data_dir) / "nextapi.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute(
            "SELECT first_name, last_name, email FROM customer_users WHERE clerk_user_id=?",
            (clerk_user_id,),
        ).fetchone()


def test_an_org_with_an_admin_and_a_member_is_provisioned_once(clerk_gateway: Gateway) -> None:
    gw = clerk_gateway
    org = ce.organization("org_2pAcmeProvision", "org_2pAcmeProvision")
    applied(post(gw, "organization.created", org))
    applied(post(gw, "user.created", ce.user("user_2pAda", "Ada", "Lovelace", "ada@acme.example")))
    applied(post(gw, "user.created", ce.user("user_2pBea", "Bea", "Ng", "bea@acme.example")))
    admin = ce.membership("orgmem_2pAda", org, "user_2pAda", "org:admin")
    applied(post(gw, "organizationMembership.created", admin, "msg_2pAdaJoins"))
    member = ce.membership("orgmem_2pBea", org, "user_2pBea", "org:member")
    applied(post(gw, "organizationMembership.created", member))
    found = org_of(gw, "org_2pAcmeProvision")
    assert found is not None
    assert (found["status"], found["email"]) == ("active", "ada@acme.example")
    assert members(gw, found["id"]) == {"user_2pAda": "admin", "user_2pBea": "member"}
    assert names(gw, "user_2pAda") == ("Ada", "Lovelace", "ada@acme.example")
    audit = gw.admin.get("/v1/audit", params={"actor": "clerk", "target": found["id"]}).json()
    assert "org.create" in {entry["action"] for entry in audit["items"]}
    # The same Svix message again (a retry, or a replay), even re-signed now: nothing changes.
    demoted = ce.membership("orgmem_2pAda", org, "user_2pAda", "org:member", updated=ce.T0 + 9)
    replay = post(gw, "organizationMembership.updated", demoted, "msg_2pAdaJoins")
    assert replay.status_code == 200 and replay.json() == {"received": True, "replay": True}
    assert members(gw, found["id"])["user_2pAda"] == "admin"


def test_events_out_of_order(clerk_gateway: Gateway) -> None:
    gw = clerk_gateway
    clerk_id = "org_2pLateOrder"
    # A membership before its organization and its user: the org and the person come from it.
    org = ce.organization(clerk_id, clerk_id)
    early = ce.membership(
        "orgmem_2pCy", org, "user_2pCy", "org:admin", first="Cy", identifier="cy@late.example"
    )
    applied(post(gw, "organizationMembership.created", early))
    found = org_of(gw, clerk_id)
    assert found is not None and members(gw, found["id"]) == {"user_2pCy": "admin"}
    assert found["email"] == "cy@late.example"
    # An update before the create it follows: the older create changes nothing.
    applied(post(gw, "organization.updated", ce.organization(clerk_id, clerk_id, ce.T0 + 20)))
    applied(post(gw, "organization.created", ce.organization(clerk_id, clerk_id + "-old")))
    applied(
        post(gw, "user.updated", ce.user("user_2pCy", "Cy", "Newer", "cy@new.example", ce.T0 + 20))
    )
    applied(post(gw, "user.created", ce.user("user_2pCy", "Cy", "Older", "cy@old.example")))
    assert names(gw, "user_2pCy") == ("Cy", "Newer", "cy@new.example")
    assert org_of(gw, clerk_id)["email"] == "cy@new.example"
    assert org_of(gw, clerk_id + "-old") is None
    # A create after the delete: the org stays closed, nothing new appears.
    applied(post(gw, "organization.deleted", ce.deleted("organization", clerk_id)))
    applied(post(gw, "organization.created", ce.organization(clerk_id, clerk_id, ce.T0 + 99)))
    again = org_of(gw, clerk_id)
    assert again is not None and again["id"] == found["id"] and again["status"] == "closed"
    # A user deleted, then a late update: their name and email are gone for good.
    applied(post(gw, "user.deleted", ce.deleted("user", "user_2pCy")))
    applied(
        post(gw, "user.updated", ce.user("user_2pCy", "Cy", "Back", "cy@back.example", ce.T0 + 99))
    )
    assert names(gw, "user_2pCy") is None
    assert members(gw, found["id"]) == {}


def test_bad_and_stale_signatures_are_400_and_change_nothing(clerk_gateway: Gateway) -> None:
    gw = clerk_gateway
    clerk_id = "org_2pForged"
    data = ce.organization(clerk_id, clerk_id)
    forged = post(gw, "organization.created", data, secret=ce.signing_secret())
    stale = post(gw, "organization.created", data, age=timedelta(minutes=6))
    for response, reason in ((forged, "No matching signature"), (stale, "too old")):
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "InvalidSignature" and reason in error["message"]
    assert org_of(gw, clerk_id) is None
    # Within the five minutes' tolerance it is accepted.
    applied(post(gw, "organization.created", data, age=timedelta(minutes=4)))
    assert org_of(gw, clerk_id) is not None


def test_without_the_secret_the_route_answers_503(tmp_path: Path) -> None:
    token = "nat_test_clerk_unset_secret"
    control = control_process(tmp_path / "data", token, env={"NEXTAPI_CLERK_WEBHOOK_SECRET": ""})
    try:
        url = address(control, "control")
        body, headers = ce.signed(
            SECRET, ce.event("organization.created", ce.organization("org_2pX", "org_2pX"))
        )
        response = httpx.post(url + URL, content=body, headers=headers, timeout=10)
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == "NotConfigured"
        assert "NEXTAPI_CLERK_WEBHOOK_SECRET" in error["message"]
        orgs = httpx.get(url + "/v1/orgs", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert orgs.json()["items"] == []
    finally:
        control.stop()


def test_an_organization_deleted_in_clerk_closes_its_org(clerk_gateway: Gateway) -> None:
    gw = clerk_gateway
    clerk_id = "org_2pClosing"
    applied(post(gw, "organization.created", ce.organization(clerk_id, clerk_id)))
    org = org_of(gw, clerk_id)
    assert org is not None
    key = gw.create_key(org["id"])
    granted = gw.admin.post(f"/v1/orgs/{org['id']}/credits", json={"amount": 10**9})
    assert granted.status_code == 201, granted.text
    headers = {"Authorization": f"Bearer {key['key']}"}
    with httpx.Client(base_url=gw.edge_url, headers=headers, timeout=10) as client:
        assert client.get(TASKS).status_code == 200
        applied(post(gw, "organization.deleted", ce.deleted("organization", clerk_id)))
        closed = gw.admin.get(f"/v1/orgs/{org['id']}").json()
        assert closed["status"] == "closed" and closed["closed_at"] is not None
        assert gw.admin.get(f"/v1/keys/{key['id']}").json()["status"] == "revoked"
        deadline = time.monotonic() + 2
        while (refused := client.get(TASKS)).status_code == 200:
            assert time.monotonic() < deadline, "the closed org's key still works"
            time.sleep(0.05)
        assert refused.status_code == 401, refused.text
    audit = gw.admin.get("/v1/audit", params={"action": "org.close", "target": org["id"]}).json()
    assert [entry["actor"] for entry in audit["items"]] == ["clerk"]
