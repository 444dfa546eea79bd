"""Dashboard sessions: an opaque random id in a cookie, its SHA-256 in SQLite with the admin
token's id (never the token), ended by logout, by the timeouts, or by revoking the token."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from control.store import db as dbm
from control.store.adminauth import Admin
from control.store.state import ControlState

IDLE_SECONDS = 30 * 60
ABSOLUTE_SECONDS = 12 * 3600
# Failed logins from one client address allowed per window before every try is refused.
LOGIN_FAILURES = 5
LOGIN_WINDOW_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class Session:
    id_hash: str
    admin: Admin
    csrf: str

    @property
    def can_write(self) -> bool:
        return self.admin.allows("POST")

    def csrf_matches(self, presented: str | None) -> bool:
        return csrf_matches(self.csrf, presented)


def csrf_matches(expected: str, presented: str | None) -> bool:
    """A form's CSRF token against its session's, in constant time (the portal's too)."""
    return bool(presented) and hmac.compare_digest(expected, presented or "")


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def start(state: ControlState, admin: Admin) -> str:
    """A new session for `admin`; returns the cookie value (known only to the browser)."""
    session_id = secrets.token_urlsafe(32)
    now = dbm.now()
    async with state.transaction() as tx:
        await tx.execute(
            "DELETE FROM ui_sessions WHERE last_seen_at<? OR created_at<?",
            (now - IDLE_SECONDS, now - ABSOLUTE_SECONDS),
        )
        await tx.execute(
            "INSERT INTO ui_sessions (id_hash, token_id, csrf, created_at, last_seen_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (_hash(session_id), admin.token_id, secrets.token_urlsafe(32), now, now),
        )
        await state.audit(tx, admin.token_id, "ui.login", admin.token_id)
    return session_id


async def find(state: ControlState, session_id: str | None) -> Session | None:
    """The live session of this cookie, or None (unknown, timed out, or its token revoked)."""
    if not session_id:
        return None
    id_hash = _hash(session_id)
    row = await dbm.fetch_one(
        state.db,
        "SELECT s.*, t.scopes, t.revoked_at FROM ui_sessions s "
        "JOIN admin_tokens t ON t.id = s.token_id WHERE s.id_hash=?",
        id_hash,
    )
    if row is None:
        return None
    now = dbm.now()
    expired = now - row["last_seen_at"] > IDLE_SECONDS or now - row["created_at"] > ABSOLUTE_SECONDS
    if expired or row["revoked_at"] is not None:
        async with state.transaction() as tx:
            await tx.execute("DELETE FROM ui_sessions WHERE id_hash=?", (id_hash,))
        return None
    if now - row["last_seen_at"] > 60:  # at most one write a minute per session
        async with state.transaction() as tx:
            await tx.execute(
                "UPDATE ui_sessions SET last_seen_at=? WHERE id_hash=?", (now, id_hash)
            )
    admin = Admin(row["token_id"], tuple(json.loads(row["scopes"])))
    return Session(id_hash, admin, row["csrf"])


async def end(state: ControlState, session: Session) -> None:
    async with state.transaction() as tx:
        await tx.execute("DELETE FROM ui_sessions WHERE id_hash=?", (session.id_hash,))
        await state.audit(tx, session.admin.token_id, "ui.logout", session.admin.token_id)
