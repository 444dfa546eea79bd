"""The identity provider's signing keys, as the portal verifies ID tokens with them: its JWKS
(RSA and EC signing keys), fetched at the first sign-in and kept, fetched again for a key id it
lacks at most every 30 s (forged key ids cannot make the portal hammer the provider)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt

REFETCH_SECONDS = 30.0


class SignInRefused(Exception):
    """A sign-in the portal does not accept, with what the person is told."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


Fetch = Callable[[str], Awaitable[dict[str, Any]]]


async def fetch_json(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        return response.json()


class ProviderKeys:
    def __init__(self, fetch: Fetch = fetch_json, clock: Callable[[], float] = time.time) -> None:
        self.fetch, self.clock = fetch, clock
        self._keys: dict[str, Any] = {}  # kid -> public key
        self._keys_at: float | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: object, jwks_uri: str) -> Any:
        """The public key `kid` names (a provider with one key may name none)."""
        if not isinstance(kid, str) or not kid:
            if len(self._keys) != 1:
                await self._refresh(jwks_uri)
            if len(self._keys) == 1:
                return next(iter(self._keys.values()))
            raise SignInRefused("The ID token names no signing key (`kid`).")
        if kid not in self._keys:
            await self._refresh(jwks_uri)
        key = self._keys.get(kid)
        if key is None:
            raise SignInRefused("The ID token is signed by a key the identity provider lacks.")
        return key

    async def _refresh(self, jwks_uri: str) -> None:
        async with self._lock:
            now = self.clock()
            if self._keys_at is not None and now - self._keys_at < REFETCH_SECONDS:
                return
            try:
                document = await self.fetch(jwks_uri)
            except (httpx.HTTPError, ValueError):
                raise SignInRefused(
                    "The identity provider's signing keys cannot be fetched: try again shortly."
                ) from None
            self._keys_at = now
            self._keys = {
                str(jwk.get("kid", "")): key
                for jwk in document.get("keys", [])
                if isinstance(jwk, dict) and (key := _public_key(jwk)) is not None
            }


def _public_key(jwk: dict[str, Any]) -> Any:
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
