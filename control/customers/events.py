"""Clerk's webhook events, read into accounts' changes: `user.*`, `organization.*`,
`organizationMembership.*` (created, updated, deleted). Only the fields the accounts keep are
read (ids, names, the primary email, roles, times); any other event type is ignored.

Clerk's times are milliseconds since the epoch; they are kept in seconds like every other time
of the control plane. A deleted object's payload is `{"id", "object", "deleted": true}`."""

from __future__ import annotations

import re
from typing import Any

from control.customers import accounts
from control.customers.accounts import Changes, ClerkMembership, ClerkOrg, ClerkUser, Role
from control.http import bad_request
from control.store.database import Queries
from control.store.state import ControlState

ROLES: dict[str, Role] = {"org:admin": "admin", "org:member": "member"}  # any other: member
HANDLED = {
    f"{kind}.{change}"
    for kind in ("user", "organization", "organizationMembership")
    for change in ("created", "updated", "deleted")
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_TEXT = 320  # a name or an email address longer than this is cut


async def apply(state: ControlState, tx: Queries, event_type: str, data: Any) -> Changes:
    """Apply one event inside `tx`; a payload missing what its type needs is a 400 (Svix then
    retries it, and nothing was changed)."""
    changes = Changes()
    if event_type not in HANDLED:
        return changes
    if not isinstance(data, dict):
        raise bad_request("`data` must be an object.")
    kind, _, change = event_type.partition(".")
    if change == "deleted":
        clerk_id = _id(data, "data.id")
        if kind == "user":
            await accounts.delete_user(state, tx, clerk_id)
        elif kind == "organization":
            await accounts.delete_org(state, tx, clerk_id, changes)
        else:
            await accounts.delete_membership(state, tx, clerk_id)
    elif kind == "user":
        await accounts.put_user(state, tx, read_user(data))
    elif kind == "organization":
        await accounts.put_org(state, tx, read_org(data, "data"), changes)
    else:
        await accounts.put_membership(state, tx, read_membership(data), changes)
    return changes


def read_user(data: dict[str, Any]) -> ClerkUser:
    primary = data.get("primary_email_address_id")
    addresses = data.get("email_addresses")
    email = None
    for address in addresses if isinstance(addresses, list) else ():
        if isinstance(address, dict) and address.get("id") == primary:
            email = _email(address.get("email_address"))
    return ClerkUser(
        id=_id(data, "data.id"),
        first_name=_text(data.get("first_name")),
        last_name=_text(data.get("last_name")),
        email=email,
        updated_at=_time(data, "updated_at", "data"),
    )


def read_org(data: Any, where: str) -> ClerkOrg:
    if not isinstance(data, dict):
        raise bad_request(f"`{where}` must be an organization object.")
    name = _text(data.get("name"))
    if name is None:
        raise bad_request(f"`{where}.name` must be a non-empty string.")
    return ClerkOrg(
        id=_id(data, f"{where}.id"), name=name, updated_at=_time(data, "updated_at", where)
    )


def read_membership(data: dict[str, Any]) -> ClerkMembership:
    person = data.get("public_user_data")
    if not isinstance(person, dict):
        raise bad_request("`data.public_user_data` must be an object.")
    role = data.get("role")
    return ClerkMembership(
        id=_id(data, "data.id"),
        org=read_org(data.get("organization"), "data.organization"),
        user_id=_id(person, "data.public_user_data.user_id", "user_id"),
        role=ROLES.get(role, "member") if isinstance(role, str) else "member",
        first_name=_text(person.get("first_name")),
        last_name=_text(person.get("last_name")),
        # The identifier is the person's email address, or a username or phone number: only an
        # email address is kept as one.
        email=_email(person.get("identifier")),
        created_at=_time(data, "created_at", "data"),
        updated_at=_time(data, "updated_at", "data"),
    )


def _id(data: dict[str, Any], where: str, field: str = "id") -> str:
    value = data.get(field)
    if not isinstance(value, str) or not 0 < len(value) <= 200 or not value.isprintable():
        raise bad_request(f"`{where}` must be a Clerk id.")
    return value


def _time(data: dict[str, Any], field: str, where: str) -> float:
    value = data.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise bad_request(f"`{where}.{field}` must be a time in milliseconds since the epoch.")
    return value / 1000


def _text(value: Any) -> str | None:
    """A name as Clerk sent it, without control characters; None if empty."""
    if not isinstance(value, str):
        return None
    cleaned = "".join(ch for ch in value if ch.isprintable()).strip()[:MAX_TEXT]
    return cleaned or None


def _email(value: Any) -> str | None:
    text = _text(value)
    return text if text is not None and _EMAIL.match(text) else None
