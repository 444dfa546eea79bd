"""Clerk session tokens, as the customer API accepts them: `Authorization: Bearer <token>` or
the `__session` cookie, an RS256 JWT signed by the Clerk instance (its JWKS, fetched from
`clerk_jwks_url` and cached, fetched again for an unknown `kid`; or one PEM public key in
`clerk_jwt_key`), within its `exp`/`nbf` (5 s leeway), from an authorized party (`azp`). The
active organization comes from the v2 claim `o` (`id`, `rol`) or the v1 claims `org_id` /
`org_role`. A refusal says why in words; the token itself is never logged nor echoed."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from control.customers.jwks import Fetch, KeysUnavailable, SigningKeys, fetch_json

LEEWAY_SECONDS = 5  # the bound: a clock this far off still verifies
SESSION_COOKIE = "__session"
SIGN_IN = "Sign in first: send the Clerk session token as a Bearer token or cookie."


class TokenRefused(Exception):
    """A session token the API does not accept: 401 (who are you?) or 403 (not this)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class ClerkSession:
    user_id: str  # Clerk's user id (`sub`)
    session_id: str  # `sid`
    org_id: str | None  # Clerk's id of the active organization, if one is active
    org_role: str | None  # its role key without the `org:` prefix: admin, member, …


def session_token(headers: Mapping[str, str], cookies: Mapping[str, str]) -> str | None:
    """The token a request presents: the bearer token first, else the `__session` cookie."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return cookies.get(SESSION_COOKIE) or None


def active_org(claims: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(org id, role key) of the session's active organization: v2's `o`, else v1's claims."""
    nested = claims.get("o")
    if isinstance(nested, dict):
        org_id, role = nested.get("id"), nested.get("rol")
    else:
        org_id, role = claims.get("org_id"), claims.get("org_role")
    if not isinstance(org_id, str) or not org_id:
        return None, None
    role = role.removeprefix("org:") if isinstance(role, str) else None
    return org_id, role


class ClerkTokens:
    def __init__(
        self,
        authorized_parties: tuple[str, ...],
        *,
        jwks_url: str = "",
        public_key_pem: str = "",
        fetch: Fetch = fetch_json,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not jwks_url and not public_key_pem:
            raise ValueError("Clerk session tokens need clerk_jwks_url or clerk_jwt_key")
        if not authorized_parties:
            raise ValueError(
                "clerk_authorized_parties is empty: list the origins of the apps that sign "
                "customers in (a token's `azp` must be one of them)"
            )
        self.authorized_parties = tuple(p.rstrip("/") for p in authorized_parties)
        self.jwks_url = jwks_url
        self.fixed_key: RSAPublicKey | None = None
        if public_key_pem:
            self.fixed_key = rsa_public_key(public_key_pem)
        self.keys = SigningKeys(fetch, clock)

    async def verify(self, token: str | None) -> ClerkSession:
        if not token:
            raise TokenRefused(401, SIGN_IN)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRefused(401, "The session token is not a JWT.") from None
        if header.get("alg") != "RS256":
            raise TokenRefused(401, "The session token must be signed with RS256.")
        key = await self._key(header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub", "sid"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRefused(401, "The session token has expired: sign in again.") from None
        except jwt.ImmatureSignatureError:
            raise TokenRefused(401, "The session token is not valid yet (check clocks).") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRefused(401, f"The session token lacks its `{exc.claim}` claim.") from None
        except jwt.PyJWTError:
            raise TokenRefused(401, "The session token's signature does not verify.") from None
        azp = claims.get("azp")
        if not isinstance(azp, str) or azp.rstrip("/") not in self.authorized_parties:
            raise TokenRefused(401, "The session token was issued to an app not authorized here.")
        if claims.get("sts") == "pending":  # signed in, with a task (e.g. choose an org) left
            raise TokenRefused(401, "The session is pending: finish signing in first.")
        org_id, role = active_org(claims)
        return ClerkSession(str(claims["sub"]), str(claims["sid"]), org_id, role)

    async def _key(self, kid: object) -> Any:
        if self.fixed_key is not None:
            return self.fixed_key
        if not isinstance(kid, str) or not kid:
            raise TokenRefused(401, "The session token names no signing key (`kid`).")
        try:
            key = await self.keys.key(kid, self.jwks_url)
        except KeysUnavailable:
            # Keys fetched before still verify; a new one is refused until Clerk answers.
            raise TokenRefused(
                401, "Clerk's signing keys cannot be fetched now: try again shortly."
            ) from None
        if key is None:
            raise TokenRefused(401, "The session token is signed by a key this instance lacks.")
        return key


def rsa_public_key(pem: str) -> RSAPublicKey:
    """Clerk's PEM public key (from its dashboard; `\\n` as written in an env file allowed)."""
    try:
        key = load_pem_public_key(pem.replace("\\n", "\n").encode())
    except ValueError as exc:
        raise ValueError(f"clerk_jwt_key is not a PEM public key: {exc}") from None
    if not isinstance(key, RSAPublicKey):
        raise ValueError("clerk_jwt_key must be an RSA public key (Clerk signs with RS256)")
    return key
