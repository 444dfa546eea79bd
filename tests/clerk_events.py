"""Clerk-shaped webhook events (as Clerk's docs show them: times in milliseconds, a deleted
object reduced to its id), and Svix's own signer for them: shared by the unit and e2e tests."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from svix.webhooks import Webhook

T0 = 1_764_000_000_000  # ms: a time before any test runs


def signing_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def event(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "data": data,
        "event_attributes": {"http_request": {"client_ip": "192.0.2.1", "user_agent": "test"}},
        "instance_id": "ins_2mCDmGHAoK0n8eXHAkJCOEPL8Pv",
        "object": "event",
        "timestamp": T0,
        "type": event_type,
    }


def user(user_id: str, first: str, last: str, email: str, updated: int = T0) -> dict[str, Any]:
    email_id = "idn_" + user_id.removeprefix("user_")
    return {
        "backup_code_enabled": False,
        "banned": False,
        "birthday": "",
        "created_at": T0,
        "email_addresses": [
            {
                "email_address": "old-" + email,
                "id": "idn_other" + user_id.removeprefix("user_"),
                "linked_to": [],
                "object": "email_address",
                "verification": {"status": "verified", "strategy": "email_code"},
            },
            {
                "email_address": email,
                "id": email_id,
                "linked_to": [],
                "object": "email_address",
                "reserved": False,
                "verification": {"status": "verified", "strategy": "ticket"},
            },
        ],
        "external_accounts": [],
        "external_id": None,
        "first_name": first,
        "gender": "",
        "id": user_id,
        "image_url": "https://img.clerk.com/x",
        "last_name": last,
        "last_sign_in_at": T0,
        "object": "user",
        "password_enabled": True,
        "phone_numbers": [{"id": "idn_phone", "phone_number": "+15555550100"}],
        "primary_email_address_id": email_id,
        "primary_phone_number_id": None,
        "private_metadata": {"plan": "internal"},
        "public_metadata": {},
        "two_factor_enabled": False,
        "unsafe_metadata": {},
        "updated_at": updated,
        "username": None,
    }


def organization(org_id: str, name: str, updated: int = T0) -> dict[str, Any]:
    return {
        "admin_delete_enabled": True,
        "created_at": T0,
        "created_by": "user_creator",
        "has_image": False,
        "id": org_id,
        "image_url": "https://img.clerk.com/o",
        "logo_url": None,
        "max_allowed_memberships": 5,
        "members_count": 1,
        "name": name,
        "object": "organization",
        "private_metadata": {},
        "public_metadata": {},
        "slug": name.lower().replace(" ", "-"),
        "updated_at": updated,
    }


def membership(
    membership_id: str,
    org: dict[str, Any],
    user_id: str,
    role: str,
    *,
    first: str = "",
    last: str = "",
    identifier: str = "",
    created: int = T0,
    updated: int = T0,
) -> dict[str, Any]:
    return {
        "created_at": created,
        "id": membership_id,
        "object": "organization_membership",
        "organization": org,
        "permissions": ["org:sys_profile:read"],
        "private_metadata": {},
        "public_metadata": {},
        "public_user_data": {
            "first_name": first,
            "has_image": False,
            "identifier": identifier,
            "image_url": "https://img.clerk.com/u",
            "last_name": last,
            "profile_image_url": "https://img.clerk.com/u",
            "user_id": user_id,
        },
        "role": role,
        "role_name": "Admin" if role == "org:admin" else "Member",
        "updated_at": updated,
    }


def deleted(object_kind: str, clerk_id: str) -> dict[str, Any]:
    return {"deleted": True, "id": clerk_id, "object": object_kind}


def signed(
    secret: str,
    payload: dict[str, Any],
    msg_id: str | None = None,
    *,
    age: timedelta = timedelta(0),
) -> tuple[bytes, dict[str, str]]:
    """The body and Svix's headers for `payload`, signed by Svix's own library `age` ago."""
    body = json.dumps(payload)
    msg_id = msg_id or "msg_" + secrets.token_hex(12)
    when = datetime.now(UTC) - age
    headers = {
        "svix-id": msg_id,
        "svix-timestamp": str(int(when.timestamp())),
        "svix-signature": Webhook(secret).sign(msg_id, when, body),
        "content-type": "application/json",
    }
    return body.encode(), headers


def deliver(control_url: str, secret: str, event_type: str, data: dict[str, Any]) -> None:
    """One Clerk event, signed as Svix signs it, posted to the control plane's receiver and
    applied (Clerk presents no admin token)."""
    import httpx  # only the e2e tests deliver over HTTP

    body, headers = signed(secret, event(event_type, data))
    response = httpx.post(
        control_url + "/v1/integrations/clerk/webhook", content=body, headers=headers, timeout=10
    )
    assert response.status_code == 200, response.text


def provision(
    control_url: str,
    secret: str,
    clerk_org: str,
    people: dict[str, tuple[str, str, str, str]],
    name: str | None = None,
) -> None:
    """An organization (named `name`, else its Clerk id) and its people as Clerk's webhooks
    bring them: user id -> (first name, last name, email, role such as org:admin)."""
    organization_data = organization(clerk_org, name or clerk_org)
    deliver(control_url, secret, "organization.created", organization_data)
    for user_id, (first, last, email, role) in people.items():
        deliver(control_url, secret, "user.created", user(user_id, first, last, email))
        member = membership(f"orgmem_{user_id}", organization_data, user_id, role)
        deliver(control_url, secret, "organizationMembership.created", member)
