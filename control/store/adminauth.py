"""Admin tokens: stored only as Argon2id hashes, verified off the event loop, cached by SHA-256.

The token in the environment (`NEXTAPI_ADMIN_TOKEN` by default) works from the first start: at
start-up its hash is stored unless a stored one already matches it.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from control.http import ApiError
from control.store import db as dbm
from control.store.database import Queries
from proxy.core import keys

# admin: everything; read: GET calls only; edge: only what an edge apart needs (/v1/edge/...)
SCOPES = ("admin", "read", "edge")
CACHE_SECONDS = 300.0
# A wrong token presented again within this is refused without a verification (each costs an
# Argon2id run per active token); a token made meanwhile empties the cache (forget()).
WRONG_CACHE_SECONDS = 10.0
WRONG_CACHED = 10_000


@dataclass(frozen=True, slots=True)
class Admin:
    token_id: str
    scopes: tuple[str, ...]

    def allows(self, method: str) -> bool:
        return "admin" in self.scopes or (method in ("GET", "HEAD") and "read" in self.scopes)

    @property
    def is_edge(self) -> bool:
        return "admin" in self.scopes or "edge" in self.scopes


def new_token() -> str:
    return "nat_" + secrets.token_urlsafe(32)


class AdminAuth:
    def __init__(self, database: Queries) -> None:
        self._db = database
        self._cache: dict[str, tuple[Admin, float]] = {}
        self._wrong: dict[str, float] = {}  # fingerprint -> until when it is known wrong
        # Bumped by forget(): a verification that began before a change (a revocation committed
        # while it ran) is answered but not cached, so the change applies on the next call.
        self._generation = 0
        # token id -> when it was last presented (wall clock), kept in memory so that a read
        # costs no write; written to `admin_tokens.last_used_at` by `flush_last_used`.
        self.last_used: dict[str, float] = {}

    def close(self) -> None:
        self._cache.clear()

    async def flush_last_used(self, tx: Queries) -> None:
        """Record the remembered last uses, within the caller's transaction."""
        used, self.last_used = self.last_used, {}
        latest = tx.dialect.greatest("COALESCE(last_used_at, 0)", "?")
        await tx.executemany(
            f"UPDATE admin_tokens SET last_used_at={latest} WHERE id=?",
            [(when, token_id) for token_id, when in used.items()],
        )

    def forget(self) -> None:
        """After any change to tokens: the next call verifies again."""
        self._cache.clear()
        self._wrong.clear()
        self._generation += 1

    async def bootstrap(self, token: str | None) -> None:
        """Store the environment's token (hashed) unless already stored; retire older env tokens."""
        rows = await dbm.fetch_all(
            self._db,
            "SELECT id, token_hash FROM admin_tokens WHERE source='env' AND revoked_at IS NULL",
        )
        matched = None
        for row in rows:
            if token and await asyncio.to_thread(keys.verify_secret, row["token_hash"], token):
                matched = row["id"]
        for row in rows:
            if row["id"] != matched:
                await self._db.execute(
                    "UPDATE admin_tokens SET revoked_at=? WHERE id=?", (dbm.now(), row["id"])
                )
        if token and matched is None:
            await self._db.execute(
                "INSERT INTO admin_tokens (id, name, token_hash, scopes, source, created_at) "
                "VALUES (?, ?, ?, ?, 'env', ?)",
                (
                    "adm_" + secrets.token_hex(8),
                    "environment",
                    await asyncio.to_thread(keys.hash_secret, token),
                    json.dumps(["admin"]),
                    dbm.now(),
                ),
            )
        self.forget()

    async def authenticate(
        self, authorization: str | None, gate: Callable[[], None] | None = None
    ) -> Admin:
        """The admin a bearer token belongs to. `gate`, if given, runs before any Argon2id
        verification (after the caches) and may raise to refuse it."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "AuthenticationError", "An admin token is required.")
        fingerprint = keys.fingerprint(token)
        cached = self._cache.get(fingerprint)
        if cached is not None and cached[1] > time.monotonic():
            self.last_used[cached[0].token_id] = time.time()
            return cached[0]
        if self._wrong.get(fingerprint, 0.0) > time.monotonic():
            raise ApiError(401, "AuthenticationError", "The admin token is not valid.")
        if gate is not None:
            gate()
        generation = self._generation
        rows = await dbm.fetch_all(
            self._db, "SELECT id, token_hash, scopes FROM admin_tokens WHERE revoked_at IS NULL"
        )
        for row in rows:
            if await asyncio.to_thread(keys.verify_secret, row["token_hash"], token):
                admin = Admin(row["id"], tuple(json.loads(row["scopes"])))
                if generation == self._generation:
                    self._cache[fingerprint] = (admin, time.monotonic() + CACHE_SECONDS)
                self.last_used[admin.token_id] = time.time()
                return admin
        if generation == self._generation:  # a token made meanwhile may be this one
            if len(self._wrong) >= WRONG_CACHED:
                self._wrong.clear()
            self._wrong[fingerprint] = time.monotonic() + WRONG_CACHE_SECONDS
        raise ApiError(401, "AuthenticationError", "The admin token is not valid.")
