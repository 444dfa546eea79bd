"""A JSON Web Key Set's signing keys, as the customer side verifies tokens with them (Clerk's
session tokens, the portal's ID tokens): fetched at the first use and kept, fetched again for a
key id it lacks at most every 30 s, so forged key ids cannot make the control plane hammer the
issuer; keys fetched before go on verifying while it cannot be reached."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt

REFETCH_SECONDS = 30.0

Fetch = Callable[[str], Awaitable[dict[str, Any]]]


class KeysUnavailable(Exception):
    """The JWKS could not be fetched (and the key asked for is not among those kept)."""


async def fetch_json(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        return response.json()


class SigningKeys:
    def __init__(self, fetch: Fetch = fetch_json, clock: Callable[[], float] = time.monotonic):
        self.fetch, self.clock = fetch, clock
        self._keys: dict[str, Any] = {}  # kid -> public key
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: object, url: str) -> Any | None:
        """The public key `kid` names (with no kid: the set's only key), or None if the set has
        none such; KeysUnavailable if the set had to be fetched and could not be."""
        if not isinstance(kid, str) or not kid:
            if len(self._keys) != 1:
                await self._refresh(url)
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        if kid not in self._keys:
            await self._refresh(url)
        return self._keys.get(kid)

    async def _refresh(self, url: str) -> None:
        async with self._lock:
            now = self.clock()
            if self._fetched_at is not None and now - self._fetched_at < REFETCH_SECONDS:
                return
            try:
                document = await self.fetch(url)
            except (httpx.HTTPError, ValueError):
                raise KeysUnavailable(url) from None
            self._fetched_at = now
            self._keys = {
                str(jwk.get("kid", "")): key
                for jwk in document.get("keys", [])
                if isinstance(jwk, dict) and (key := public_key(jwk)) is not None
            }


def public_key(jwk: dict[str, Any]) -> Any:
    """An RSA or EC signing key of a JWKS; None for any other (encryption keys, other types)."""
    if jwk.get("use", "sig") != "sig":
        return None
    try:
        if jwk.get("kty") == "RSA":
            return jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(jwk))
        if jwk.get("kty") == "EC":
            return jwt.algorithms.ECAlgorithm.from_jwk(json.dumps(jwk))
    except (jwt.PyJWTError, ValueError, KeyError):
        return None
    return None
