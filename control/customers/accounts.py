"""Customer accounts as Clerk describes them: orgs found by their Clerk id, members with a role,
and the name and email of each person (what the privacy policy lists, nothing more).

The writes run inside the caller's transaction (the one that claims the Svix message), and
every one is ordered by Clerk's own `updated_at`: a version older than the one applied changes
nothing, and a deleted object keeps a tombstone that no late create or update undoes (webhooks
arrive out of order, and more than once). The reads are what the customer API builds on."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal, NamedTuple

from control.store import db as dbm
from control.store import orgs as store_orgs
from control.store.database import Queries, Row
from control.store.state import ControlState

ACTOR = "clerk"  # the audit log's actor of every change Clerk's webhooks make
type Role = Literal["admin", "member"]
type ObjectKind = Literal["user", "organization", "organization_membership"]


class Membership(NamedTuple):
    org_id: str
    role: Role


@dataclass(frozen=True, slots=True)
class ClerkUser:
    id: str
    first_name: str | None
    last_name: str | None
    email: str | None  # the primary email address
    updated_at: float  # Clerk's, in seconds


@dataclass(frozen=True, slots=True)
class ClerkOrg:
    id: str
    name: str
    updated_at: float


@dataclass(frozen=True, slots=True)
class ClerkMembership:
    id: str
    org: ClerkOrg
    user_id: str
    role: Role
    # The person as the membership shows them (public_user_data): kept only until the user's
    # own events say more.
    first_name: str | None
    last_name: str | None
    email: str | None
    created_at: float
    updated_at: float


# --- reads -----------------------------------------------------------------------------------


async def member_of(db: Queries, clerk_user_id: str, clerk_org_id: str) -> Membership | None:
    """The org and role of a Clerk user in a Clerk organization; None if they are not a member,
    or the org is closed (a closed account serves no one)."""
    row = await dbm.fetch_one(
        db,
        "SELECT o.id AS org_id, m.role FROM customer_members m JOIN orgs o ON o.id=m.org_id "
        "WHERE m.clerk_user_id=? AND o.external_id=? AND o.status!='closed' "
        "ORDER BY m.created_at DESC LIMIT 1",
        clerk_user_id,
        clerk_org_id,
    )
    return None if row is None else Membership(row["org_id"], row["role"])


async def org_by_external_id(db: Queries, clerk_org_id: str) -> Row | None:
    """The org a Clerk organization is (any status), or None if no webhook provisioned it."""
    return await dbm.fetch_one(db, "SELECT * FROM orgs WHERE external_id=?", clerk_org_id)


async def user(db: Queries, clerk_user_id: str) -> Row | None:
    return await dbm.fetch_one(
        db, "SELECT * FROM customer_users WHERE clerk_user_id=?", clerk_user_id
    )


# --- Svix messages and object versions ---------------------------------------------------------


async def claim_message(tx: Queries, svix_id: str, event_type: str) -> bool:
    """Record the Svix message as applied; False if it was already (a retry or a replay), so
    the caller changes nothing."""
    cursor = await tx.execute(
        "INSERT INTO clerk_messages (svix_id, event_type, applied_at) VALUES (?,?,?) "
        "ON CONFLICT DO NOTHING",
        (svix_id, event_type, dbm.now()),
    )
    return cursor.rowcount == 1


async def _deleted(tx: Queries, clerk_id: str) -> bool:
    row = await dbm.fetch_one(tx, "SELECT deleted_at FROM clerk_objects WHERE clerk_id=?", clerk_id)
    return row is not None and row["deleted_at"] is not None


async def _advance(tx: Queries, clerk_id: str, kind: ObjectKind, updated_at: float) -> bool:
    """Record `updated_at` as the object's newest version; False (nothing recorded) if a version
    as new was applied already, or the object was deleted."""
    cursor = await tx.execute(
        "INSERT INTO clerk_objects (clerk_id, object, updated_at) VALUES (?,?,?) "
        "ON CONFLICT(clerk_id) DO UPDATE SET updated_at=excluded.updated_at "
        "WHERE clerk_objects.deleted_at IS NULL AND clerk_objects.updated_at < excluded.updated_at",
        (clerk_id, kind, updated_at),
    )
    return cursor.rowcount == 1


async def _tombstone(tx: Queries, clerk_id: str, kind: ObjectKind) -> bool:
    """Mark the object deleted, for good; False if it was already."""
    cursor = await tx.execute(
        "INSERT INTO clerk_objects (clerk_id, object, updated_at, deleted_at) VALUES (?,?,0,?) "
        "ON CONFLICT(clerk_id) DO UPDATE SET deleted_at=excluded.deleted_at "
        "WHERE clerk_objects.deleted_at IS NULL",
        (clerk_id, kind, dbm.now()),
    )
    return cursor.rowcount == 1


# --- writes ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Changes:
    """What a transaction changed that the caller acts on once it is committed."""

    orgs_changed: bool = False  # the policy snapshot is published again
    orgs_closed: list[str] | None = None  # their tasks are cancelled upstream

    def closed(self, org_id: str) -> None:
        self.orgs_changed = True
        self.orgs_closed = [*(self.orgs_closed or []), org_id]


async def put_org(state: ControlState, tx: Queries, org: ClerkOrg, changes: Changes) -> str | None:
    """Create or rename the org a Clerk organization is; its id, or None if Clerk deleted it.
    An older version than the one applied changes nothing (but still names the org)."""
    if await _deleted(tx, org.id):
        return None
    existing = await org_by_external_id(tx, org.id)
    if not await _advance(tx, org.id, "organization", org.updated_at):
        return None if existing is None else existing["id"]
    if existing is None:
        org_id = "org_" + secrets.token_hex(8)
        created = dbm.now()
        # Its email is its first admin's, once known (_refresh_email); the rest: the defaults.
        await tx.execute(
            "INSERT INTO orgs (id, name, email, external_id, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?)",
            (org_id, org.name, "", org.id, created, created),
        )
        await state.audit(tx, ACTOR, "org.create", org_id, {"external_id": org.id})
        changes.orgs_changed = True
        return org_id
    if existing["name"] != org.name and existing["purged_at"] is None:
        await tx.execute(
            "UPDATE orgs SET name=?, updated_at=? WHERE id=?", (org.name, dbm.now(), existing["id"])
        )
        await state.audit(tx, ACTOR, "org.update", existing["id"], {"fields": ["name"]})
    return existing["id"]


async def delete_org(state: ControlState, tx: Queries, clerk_org_id: str, changes: Changes) -> None:
    """Clerk deleted the organization: the org is closed as the admin API closes it (its keys
    stop at once); retention deletes its account data after the closure period and keeps its
    billing records for theirs. The tombstone refuses whatever arrives about it later."""
    await _tombstone(tx, clerk_org_id, "organization")
    org = await org_by_external_id(tx, clerk_org_id)
    if org is not None and await store_orgs.close(state, tx, ACTOR, org["id"]):
        changes.closed(org["id"])


async def put_user(state: ControlState, tx: Queries, person: ClerkUser) -> None:
    if not await _advance(tx, person.id, "user", person.updated_at):
        return
    now = dbm.now()
    await tx.execute(
        "INSERT INTO customer_users (clerk_user_id, first_name, last_name, email, created_at, "
        "updated_at) VALUES (?,?,?,?,?,?) ON CONFLICT(clerk_user_id) DO UPDATE SET "
        "first_name=excluded.first_name, last_name=excluded.last_name, email=excluded.email, "
        "updated_at=excluded.updated_at",
        (person.id, person.first_name, person.last_name, person.email, now, now),
    )
    await _refresh_emails(state, tx, await _orgs_of(tx, person.id))


async def delete_user(state: ControlState, tx: Queries, clerk_user_id: str) -> None:
    """Clerk deleted the user: their memberships end and their name and email are erased now,
    not after the 30 days of a closed account: the account (the org, its keys and billing) is
    not closed by one person leaving, so nothing would ever end this person's data otherwise,
    and Clerk deletes a user on their request (erasure). The tombstone keeps only Clerk's id,
    so a late event cannot bring them back."""
    if not await _tombstone(tx, clerk_user_id, "user"):
        return
    orgs = await _orgs_of(tx, clerk_user_id)
    await tx.execute("DELETE FROM customer_members WHERE clerk_user_id=?", (clerk_user_id,))
    await tx.execute("DELETE FROM customer_users WHERE clerk_user_id=?", (clerk_user_id,))
    await _refresh_emails(state, tx, orgs)  # an org's email that was theirs goes too
    await state.audit(tx, ACTOR, "customer.erase", clerk_user_id, {"orgs": orgs})


async def put_membership(
    state: ControlState, tx: Queries, member: ClerkMembership, changes: Changes
) -> None:
    """Add or change a member. A membership may come before its organization's or its user's
    own events: the org is made from the organization the membership carries, and the person
    from the membership's public user data until their own events arrive."""
    if await _deleted(tx, member.user_id):
        return
    org_id = await put_org(state, tx, member.org, changes)
    if org_id is None or not await _advance(
        tx, member.id, "organization_membership", member.updated_at
    ):
        return
    await tx.execute(
        "INSERT INTO customer_members (clerk_membership_id, org_id, clerk_user_id, role, "
        "created_at, updated_at) VALUES (?,?,?,?,?,?) ON CONFLICT(clerk_membership_id) DO "
        "UPDATE SET role=excluded.role, updated_at=excluded.updated_at",
        (member.id, org_id, member.user_id, member.role, member.created_at, dbm.now()),
    )
    now = dbm.now()
    await tx.execute(  # never over what the user's own events said
        "INSERT INTO customer_users (clerk_user_id, first_name, last_name, email, "
        "created_at, updated_at) VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING",
        (member.user_id, member.first_name, member.last_name, member.email, now, now),
    )
    await _refresh_emails(state, tx, [org_id])


async def delete_membership(state: ControlState, tx: Queries, clerk_membership_id: str) -> None:
    if not await _tombstone(tx, clerk_membership_id, "organization_membership"):
        return
    row = await dbm.fetch_one(
        tx, "SELECT org_id FROM customer_members WHERE clerk_membership_id=?", clerk_membership_id
    )
    if row is None:
        return
    await tx.execute(
        "DELETE FROM customer_members WHERE clerk_membership_id=?", (clerk_membership_id,)
    )
    await _refresh_emails(state, tx, [row["org_id"]])


async def _orgs_of(tx: Queries, clerk_user_id: str) -> list[str]:
    rows = await dbm.fetch_all(
        tx, "SELECT DISTINCT org_id FROM customer_members WHERE clerk_user_id=?", clerk_user_id
    )
    return [row["org_id"] for row in rows]


async def _refresh_email(state: ControlState, tx: Queries, org_id: str) -> None:
    """An org from Clerk has its first admin's email (the earliest admin membership whose
    person's email is known), or "" while none is; a purged org keeps none."""
    row = await dbm.fetch_one(
        tx,
        "SELECT u.email FROM customer_members m JOIN customer_users u "
        "ON u.clerk_user_id=m.clerk_user_id WHERE m.org_id=? AND m.role='admin' "
        "AND u.email IS NOT NULL ORDER BY m.created_at, m.clerk_membership_id LIMIT 1",
        org_id,
    )
    email = "" if row is None else row["email"]
    cursor = await tx.execute(
        "UPDATE orgs SET email=?, updated_at=? WHERE id=? AND email!=? AND purged_at IS NULL "
        "AND external_id IS NOT NULL",
        (email, dbm.now(), org_id, email),
    )
    if cursor.rowcount:
        await state.audit(tx, ACTOR, "org.update", org_id, {"fields": ["email"]})


async def _refresh_emails(state: ControlState, tx: Queries, orgs: list[str]) -> None:
    for org_id in orgs:
        await _refresh_email(state, tx, org_id)
