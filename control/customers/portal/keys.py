"""The identity provider's signing keys, as the portal verifies ID tokens with them (the JWKS
cache of control/customers/jwks.py), and the portal's refusal of a sign-in."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from control.customers.jwks import Fetch, KeysUnavailable, SigningKeys, fetch_json

__all__ = ["Fetch", "ProviderKeys", "SignInRefused", "fetch_json"]


class SignInRefused(Exception):
    """A sign-in the portal does not accept, with what the person is told."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProviderKeys:
    def __init__(self, fetch: Fetch = fetch_json, clock: Callable[[], float] = time.time) -> None:
        self._keys = SigningKeys(fetch, clock)

    async def key(self, kid: object, jwks_uri: str) -> Any:
        """The public key `kid` names (a provider with one key may name none)."""
        try:
            key = await self._keys.key(kid, jwks_uri)
        except KeysUnavailable:
            raise SignInRefused(
                "The identity provider's signing keys cannot be fetched: try again shortly."
            ) from None
        if key is not None:
            return key
        if not isinstance(kid, str) or not kid:
            raise SignInRefused("The ID token names no signing key (`kid`).")
        raise SignInRefused("The ID token is signed by a key the identity provider lacks.")
