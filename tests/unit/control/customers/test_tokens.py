"""Clerk session tokens: signed here by RSA keys the test serves as a JWKS over loopback HTTP,
as Clerk's instance would (its Frontend API's /.well-known/jwks.json)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import jwt
import pytest

from control.customers.tokens import ClerkTokens, TokenRefused, session_token
from tests.clerk_tokens import APP, Jwks, SigningKey


@pytest.fixture
def jwks() -> Iterator[Jwks]:
    served = Jwks()
    yield served
    served.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refusal(tokens: ClerkTokens, token: str | None) -> TokenRefused:
    with pytest.raises(TokenRefused) as caught:
        asyncio.run(tokens.verify(token))
    return caught.value


def test_a_v2_token_from_the_jwks_names_the_user_and_active_org(jwks: Jwks) -> None:
    key = SigningKey("k1")
    jwks.keys = [key.jwk()]
    tokens = ClerkTokens((APP,), jwks_url=jwks.url)
    session = asyncio.run(tokens.verify(key.sign()))
    assert (session.user_id, session.session_id) == ("user_1", "sess_1")
    assert (session.org_id, session.org_role) == ("org_c1", "admin")
    asyncio.run(tokens.verify(key.sign(sub="user_2")))
    assert jwks.fetches == 1  # cached


def test_v1_org_claims_and_no_active_org(jwks: Jwks) -> None:
    key = SigningKey("k1")
    jwks.keys = [key.jwk()]
    tokens = ClerkTokens((APP,), jwks_url=jwks.url)
    v1 = key.sign(o=None, v=None, org_id="org_c9", org_role="org:member")
    assert asyncio.run(tokens.verify(v1)).org_role == "member"
    assert asyncio.run(tokens.verify(v1)).org_id == "org_c9"
    personal = asyncio.run(tokens.verify(key.sign(o=None)))
    assert (personal.org_id, personal.org_role) == (None, None)


def test_expiry_and_not_before_allow_five_seconds_of_clock_skew(jwks: Jwks) -> None:
    key = SigningKey("k1")
    jwks.keys = [key.jwk()]
    tokens = ClerkTokens((APP,), jwks_url=jwks.url)
    now = int(time.time())
    asyncio.run(tokens.verify(key.sign(exp=now - 3)))  # within the leeway
    expired = refusal(tokens, key.sign(exp=now - 30))
    assert (expired.status, expired.message) == (
        401,
        "The session token has expired: sign in again.",
    )
    assert "not valid yet" in refusal(tokens, key.sign(nbf=now + 60)).message
    assert "`exp`" in refusal(tokens, key.sign(exp=None)).message


def test_tokens_for_another_app_or_signed_by_another_key_are_refused(jwks: Jwks) -> None:
    key, foreign = SigningKey("k1"), SigningKey("k1")  # the foreign key reuses the kid
    jwks.keys = [key.jwk()]
    tokens = ClerkTokens((APP, "https://other.example/"), jwks_url=jwks.url)
    assert "not authorized" in refusal(tokens, key.sign(azp="https://evil.example")).message
    assert "not authorized" in refusal(tokens, key.sign(azp=None)).message
    asyncio.run(tokens.verify(key.sign(azp="https://other.example")))  # a listed party
    assert "signature" in refusal(tokens, foreign.sign()).message
    hs = jwt.encode({"sub": "u", "sid": "s", "azp": APP}, "s" * 32, algorithm="HS256")
    assert "RS256" in refusal(tokens, hs).message  # no algorithm confusion
    assert "not a JWT" in refusal(tokens, "not-a-token").message
    assert refusal(tokens, None).status == 401
    assert "pending" in refusal(tokens, key.sign(sts="pending")).message


def test_an_unknown_kid_fetches_the_jwks_again_but_not_on_every_forged_token(jwks: Jwks) -> None:
    old, new = SigningKey("k1"), SigningKey("k2")
    jwks.keys = [old.jwk()]
    clock = Clock()
    tokens = ClerkTokens((APP,), jwks_url=jwks.url, clock=clock)
    asyncio.run(tokens.verify(old.sign()))
    jwks.keys = [old.jwk(), new.jwk()]  # Clerk rotates its keys
    assert "lacks" in refusal(tokens, new.sign()).message  # fetched within 30 s: not again
    assert jwks.fetches == 1
    clock.now += 31
    assert asyncio.run(tokens.verify(new.sign())).user_id == "user_1"
    assert jwks.fetches == 2
    for _ in range(5):  # forged kids, one after another: one fetch at most per 30 s
        refusal(tokens, new.sign(kid="forged"))
    assert jwks.fetches == 2


def test_jwks_unreachable_refuses_new_keys_in_words(jwks: Jwks) -> None:
    key = SigningKey("k1")
    url = jwks.url
    jwks.close()
    tokens = ClerkTokens((APP,), jwks_url=url)
    assert "cannot be fetched" in refusal(tokens, key.sign()).message


def test_a_pem_key_verifies_without_a_jwks() -> None:
    key = SigningKey("k1")
    tokens = ClerkTokens((APP,), public_key_pem=key.pem().replace("\n", "\\n"))
    assert asyncio.run(tokens.verify(key.sign(kid="any"))).org_id == "org_c1"
    assert "signature" in refusal(tokens, SigningKey("k1").sign()).message


def test_configuration_is_checked_at_start() -> None:
    with pytest.raises(ValueError, match="clerk_authorized_parties"):
        ClerkTokens((), jwks_url="https://clerk.example/jwks")
    with pytest.raises(ValueError, match="clerk_jwks_url or clerk_jwt_key"):
        ClerkTokens((APP,))
    with pytest.raises(ValueError, match="PEM"):
        ClerkTokens((APP,), public_key_pem="not a key")


def test_the_token_comes_from_the_bearer_header_or_the_session_cookie() -> None:
    assert session_token({"authorization": "Bearer abc"}, {"__session": "xyz"}) == "abc"
    assert session_token({}, {"__session": "xyz"}) == "xyz"
    assert session_token({"authorization": "Basic abc"}, {}) is None
    assert session_token({"authorization": "Bearer "}, {}) is None
