"""Customer authentication: key format, Argon2id once per key, and the verified-key cache.

Argon2id costs ~20 ms of CPU, so it runs in worker threads (it releases the GIL), at most once per
presented key per cache lifetime, and concurrent first uses of one key share a single verification.
The cache is keyed by a SHA-256 of the presented key and remembers which stored hash matched, so a
revocation or the end of a rotation's grace period takes effect on the very next request.

A key is judged only on a current snapshot (PolicyStore.current): before an edge apart has had
one (first start with its control plane away, or a refused file) or once its snapshot is older
than it may be, a well-formed key is `Unchecked`, answered 503 with Retry-After, never 401: the
key is not known to be invalid. A missing or malformed key is a 401 either way.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum

from proxy.core import keys
from proxy.policy import KeyPolicy, OrgPolicy, PolicyStore, Snapshot


class AuthFailure(StrEnum):
    MISSING = "No API key was given: send `Authorization: Bearer nk_…`."
    MALFORMED = "The API key is malformed."
    UNKNOWN = "The API key is invalid."
    REVOKED = "The API key has been revoked."
    SUSPENDED = "The API key is suspended."
    EXPIRED = "The API key has expired."
    ORG_SUSPENDED = "The organization is suspended."
    ORG_CLOSED = "The organization's account is closed."
    THROTTLED = "Too many failed authentications: try again later."


class Unchecked(StrEnum):
    """The key could not be checked at all: the edge has no current policy to check it on."""

    NO_POLICY = "The API key cannot be checked right now; try again shortly."


@dataclass(frozen=True, slots=True)
class Identity:
    key: KeyPolicy
    org: OrgPolicy


@dataclass(slots=True)
class _Verified:
    key_id: str
    matched_hash: str
    expires: float  # monotonic


class KeyAuthenticator:
    def __init__(
        self,
        policy: PolicyStore,
        *,
        cache_ttl: float = 300.0,
        max_entries: int = 100_000,
        workers: int = 2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._policy = policy
        self._cache_ttl = cache_ttl
        self._max_entries = max_entries
        self._clock = clock
        self._verified: OrderedDict[str, _Verified] = OrderedDict()
        # A short memory of wrong keys, so repeating the same bad key costs no hashing.
        self._rejected: OrderedDict[str, float] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[str | None]] = {}
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        self.verifications = 0  # Argon2id runs, for tests and metrics
        policy.subscribe(self._on_snapshot)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _on_snapshot(self, old: Snapshot, new: Snapshot) -> None:
        # Drop entries of keys that changed: revoked, rotated, deleted. Correctness does not depend
        # on it (each hit is checked against the live snapshot); it keeps no secret-derived state
        # around for keys that no longer exist.
        changed = {kid for kid, k in old.keys.items() if new.keys.get(kid) != k}
        if changed:
            for fp in [fp for fp, v in self._verified.items() if v.key_id in changed]:
                del self._verified[fp]
            self._rejected.clear()

    async def authenticate(
        self, authorization: str | None, gate: Callable[[], Awaitable[bool]] | None = None
    ) -> Identity | AuthFailure | Unchecked:
        """`gate`, if given, is asked before any Argon2id work; False means THROTTLED."""
        presented = bearer(authorization)
        if presented is None:
            return AuthFailure.MISSING
        parsed = keys.parse_key(presented)
        if parsed is None:
            return AuthFailure.MALFORMED
        if not self._policy.current(self._clock()):
            return Unchecked.NO_POLICY
        snapshot = self._policy.snapshot
        key = snapshot.keys.get(parsed.key_id)
        if key is None:
            return AuthFailure.UNKNOWN
        now = self._clock()
        valid = key.valid_hashes(now)
        fingerprint = keys.fingerprint(presented)
        if not self._cached(fingerprint, key.key_id, valid):
            if self._rejected_recently(fingerprint):
                return AuthFailure.UNKNOWN
            if gate is not None and fingerprint not in self._inflight and not await gate():
                return AuthFailure.THROTTLED
            matched = await self._verify_once(fingerprint, presented, valid)
            if matched is None:
                return AuthFailure.UNKNOWN
            # The snapshot may have changed while we hashed: judge against the live one.
            key = self._policy.snapshot.keys.get(parsed.key_id)
            if key is None or matched not in key.valid_hashes(self._clock()):
                return AuthFailure.UNKNOWN
        return self._check_status(key, now)

    def _check_status(self, key: KeyPolicy, now: float) -> Identity | AuthFailure:
        if key.status == "revoked":
            return AuthFailure.REVOKED
        if key.status == "suspended":
            return AuthFailure.SUSPENDED
        if key.expires_at is not None and now >= key.expires_at:
            return AuthFailure.EXPIRED
        org = self._policy.snapshot.orgs.get(key.org_id)
        if org is None or org.status == "closed":
            return AuthFailure.ORG_CLOSED
        if org.status != "active":
            return AuthFailure.ORG_SUSPENDED
        return Identity(key, org)

    def _cached(self, fingerprint: str, key_id: str, valid: tuple[str, ...]) -> bool:
        entry = self._verified.get(fingerprint)
        if entry is None:
            return False
        if entry.key_id != key_id or entry.matched_hash not in valid:
            del self._verified[fingerprint]
            return False
        if entry.expires < time.monotonic():
            del self._verified[fingerprint]
            return False
        return True

    def _rejected_recently(self, fingerprint: str) -> bool:
        until = self._rejected.get(fingerprint)
        if until is None:
            return False
        if until < time.monotonic():
            del self._rejected[fingerprint]
            return False
        return True

    async def _verify_once(
        self, fingerprint: str, presented: str, valid: tuple[str, ...]
    ) -> str | None:
        """Argon2id in a worker thread; concurrent callers with the same key share one run."""
        pending = self._inflight.get(fingerprint)
        if pending is not None:
            return await asyncio.shield(pending)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str | None] = loop.create_future()
        self._inflight[fingerprint] = future
        try:
            self.verifications += 1
            matched = await loop.run_in_executor(self._executor, _match, valid, presented)
            if matched is None:
                _remember(self._rejected, fingerprint, time.monotonic() + 10.0, self._max_entries)
            else:
                entry = _Verified(key_id_of(presented), matched, time.monotonic() + self._cache_ttl)
                _remember(self._verified, fingerprint, entry, self._max_entries)
            future.set_result(matched)
            return matched
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters, if any, get it through shield
            raise
        finally:
            del self._inflight[fingerprint]


def _match(valid: tuple[str, ...], presented: str) -> str | None:
    for phc in valid:
        if keys.verify_secret(phc, presented):
            return phc
    return None


def key_id_of(presented: str) -> str:
    return presented[8 : 8 + keys.KEY_ID_LENGTH]


def _remember[V](cache: OrderedDict[str, V], fingerprint: str, value: V, limit: int) -> None:
    cache[fingerprint] = value
    cache.move_to_end(fingerprint)
    while len(cache) > limit:
        cache.popitem(last=False)


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, credential = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return credential.strip()
