"""Portal sessions: an opaque random id in the browser's cookie, its SHA-256 in SQLite with the
OIDC subject and the name and email of the ID token (never a token of the provider's), ended by
signing out or by the timeouts, as the dashboard's sessions (control/ui/sessions.py) are."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from control.customers.portal.oidc import Identity
from control.store import db as dbm
from control.store.state import ControlState
from control.ui.sessions import csrf_matches

IDLE_SECONDS = 2 * 3600
ABSOLUTE_SECONDS = 12 * 3600


@dataclass(frozen=True, slots=True)
class PortalSession:
    id_hash: str
    identity: Identity
    csrf: str
    expires_at: float
    org_external_id: str | None = None  # the org chosen with the switcher (None: the newest)

    def csrf_matches(self, presented: str | None) -> bool:
        return csrf_matches(self.csrf, presented)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def start(state: ControlState, identity: Identity) -> str:
    """A new session of `identity`; returns the cookie value (known only to the browser)."""
    session_id = secrets.token_urlsafe(32)
    now = dbm.now()
    async with state.transaction() as tx:
        await tx.execute(
            "DELETE FROM portal_sessions WHERE expires_at<? OR last_seen_at<?",
            (now, now - IDLE_SECONDS),
        )
        await tx.execute(
            "INSERT INTO portal_sessions (id_hash, sub, name, email, csrf, created_at, "
            "last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                _hash(session_id),
                identity.sub,
                identity.name,
                identity.email,
                secrets.token_urlsafe(32),
                now,
                now,
                now + ABSOLUTE_SECONDS,
            ),
        )
        await state.audit(tx, "portal", "portal.login", identity.sub)
    return session_id


async def find(state: ControlState, session_id: str | None) -> PortalSession | None:
    """The live session of this cookie, or None (unknown, signed out or timed out)."""
    if not session_id:
        return None
    id_hash = _hash(session_id)
    row = await dbm.fetch_one(state.db, "SELECT * FROM portal_sessions WHERE id_hash=?", id_hash)
    if row is None:
        return None
    now = dbm.now()
    if now >= row["expires_at"] or now - row["last_seen_at"] > IDLE_SECONDS:
        async with state.transaction() as tx:
            await tx.execute("DELETE FROM portal_sessions WHERE id_hash=?", (id_hash,))
        return None
    if now - row["last_seen_at"] > 60:  # at most one write a minute per session
        async with state.transaction() as tx:
            await tx.execute(
                "UPDATE portal_sessions SET last_seen_at=? WHERE id_hash=?", (now, id_hash)
            )
    identity = Identity(row["sub"], row["name"], row["email"])
    return PortalSession(id_hash, identity, row["csrf"], row["expires_at"], row["org_external_id"])


async def choose_org(state: ControlState, session: PortalSession, clerk_org_id: str) -> None:
    """The session acts in this organization from now on (the caller checked membership)."""
    async with state.transaction() as tx:
        await tx.execute(
            "UPDATE portal_sessions SET org_external_id=? WHERE id_hash=?",
            (clerk_org_id, session.id_hash),
        )


async def end(state: ControlState, session: PortalSession) -> None:
    async with state.transaction() as tx:
        await tx.execute("DELETE FROM portal_sessions WHERE id_hash=?", (session.id_hash,))
        await state.audit(tx, "portal", "portal.logout", session.identity.sub)
