"""The portal's OIDC relying party (control/customers/portal/oidc.py) against a provider played
here: its discovery document and JWKS served from memory, ID tokens signed by local RSA and EC
keys, the token endpoint's answers scripted. The real provider is met by the e2e tests."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import Coroutine
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from control.customers.portal.oidc import Flow, Identity, RelyingParty, SignInRefused

ISSUER = "https://id.example"
CLIENT = "portal-client"
SECRET = "s3cret/+="
REDIRECT = "https://control.example/portal/callback"


def run[T](coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


class FakeProvider:
    """Discovery, JWKS and a token endpoint, answering from memory."""

    def __init__(self, **discovery: Any) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.document = {
            "issuer": ISSUER,
            "authorization_endpoint": f"{ISSUER}/auth",
            "token_endpoint": f"{ISSUER}/token",
            "jwks_uri": f"{ISSUER}/jwks",
            "end_session_endpoint": f"{ISSUER}/session/end",
            "userinfo_endpoint": f"{ISSUER}/userinfo",
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        } | discovery
        self.fetched: list[str] = []
        self.posted: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self.id_token = ""
        self.claims: dict[str, Any] = {}  # what the userinfo endpoint answers

    def jwks(self) -> dict[str, Any]:
        public_rsa = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key()))
        public_ec = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key()))
        return {"keys": [public_rsa | {"kid": "r1", "use": "sig"}, public_ec | {"kid": "e1"}]}

    async def fetch(self, url: str) -> dict[str, Any]:
        self.fetched.append(url)
        if url == f"{ISSUER}/.well-known/openid-configuration":
            return self.document
        if url == f"{ISSUER}/jwks":
            return self.jwks()
        raise httpx.ConnectError("no such URL")

    async def post(self, url: str, form: dict[str, str], headers: dict[str, str]) -> httpx.Response:
        self.posted.append((url, form, headers))
        return httpx.Response(
            200, json={"id_token": self.id_token, "access_token": "at-1", "token_type": "Bearer"}
        )

    async def userinfo(self, url: str, access_token: str) -> dict[str, Any]:
        assert (url, access_token) == (f"{ISSUER}/userinfo", "at-1")
        return self.claims

    def sign(self, nonce: str, /, alg: str = "RS256", kid: str = "r1", **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": ISSUER,
            "aud": CLIENT,
            "sub": "user_a",
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            "name": "Ada Lovelace",
            "email": "ada@example.com",
        } | claims
        body = {k: v for k, v in body.items() if v is not None}
        key = self.rsa if alg == "RS256" else self.ec
        return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})


def party(provider: FakeProvider, secret: str = SECRET, **kwargs: Any) -> RelyingParty:
    return RelyingParty(
        ISSUER,
        CLIENT,
        secret,
        fetch=provider.fetch,
        post=provider.post,
        userinfo=provider.userinfo,
        **kwargs,
    )


def begun(rp: RelyingParty) -> tuple[dict[str, str], Flow]:
    url, flow = run(rp.begin(REDIRECT))
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    return query, flow


def test_the_authorization_request_carries_pkce_s256_state_and_nonce() -> None:
    provider = FakeProvider()
    query, flow = begun(party(provider))
    assert query["response_type"] == "code" and query["client_id"] == CLIENT
    assert query["redirect_uri"] == REDIRECT and query["scope"] == "openid profile email"
    assert query["state"] == flow.state and query["nonce"] == flow.nonce
    assert query["code_challenge_method"] == "S256"
    digest = hashlib.sha256(flow.code_verifier.encode()).digest()
    assert query["code_challenge"] == base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert 43 <= len(flow.code_verifier) <= 128
    assert flow.code_verifier not in json.dumps(query)  # only its hash leaves


def test_a_callback_of_this_flow_exchanges_the_code_with_basic_auth_and_verifies() -> None:
    provider = FakeProvider()
    rp = party(provider)
    _, flow = begun(rp)
    provider.id_token = provider.sign(flow.nonce)
    identity = run(rp.finish(flow, {"code": "c0de", "state": flow.state, "iss": ISSUER}))
    assert identity == Identity("user_a", "Ada Lovelace", "ada@example.com")
    url, form, headers = provider.posted[0]
    assert url == f"{ISSUER}/token"
    assert form == {
        "grant_type": "authorization_code",
        "code": "c0de",
        "redirect_uri": REDIRECT,
        "code_verifier": flow.code_verifier,
    }
    user, _, password = (
        base64.b64decode(headers["Authorization"].split()[1]).decode().partition(":")
    )
    assert (user, password) == (CLIENT, "s3cret%2F%2B%3D")  # form-encoded first (RFC 6749 2.3.1)
    # Discovery and keys are fetched once and kept.
    _, again = begun(rp)
    provider.id_token = provider.sign(again.nonce)
    run(rp.finish(again, {"code": "c0de2", "state": again.state}))
    assert provider.fetched.count(f"{ISSUER}/.well-known/openid-configuration") == 1
    assert provider.fetched.count(f"{ISSUER}/jwks") == 1


def test_client_secret_post_when_the_provider_allows_only_that_and_none_without_a_secret() -> None:
    provider = FakeProvider(token_endpoint_auth_methods_supported=["client_secret_post"])
    rp = party(provider)
    _, flow = begun(rp)
    provider.id_token = provider.sign(flow.nonce)
    run(rp.finish(flow, {"code": "c", "state": flow.state}))
    _, form, headers = provider.posted[-1]
    assert form["client_id"] == CLIENT and form["client_secret"] == SECRET
    assert "Authorization" not in headers

    public = party(provider, secret="")
    _, flow = begun(public)
    provider.id_token = provider.sign(flow.nonce)
    run(public.finish(flow, {"code": "c", "state": flow.state}))
    _, form, headers = provider.posted[-1]
    assert form["client_id"] == CLIENT and "client_secret" not in form
    assert "Authorization" not in headers


def test_an_es256_id_token_verifies_too() -> None:
    provider = FakeProvider()
    rp = party(provider)
    _, flow = begun(rp)
    provider.id_token = provider.sign(flow.nonce, alg="ES256", kid="e1")
    assert run(rp.finish(flow, {"code": "c", "state": flow.state})).sub == "user_a"


def refusal(rp: RelyingParty, flow: Flow | None, params: dict[str, str]) -> str:
    with pytest.raises(SignInRefused) as refused:
        run(rp.finish(flow, params))
    return refused.value.message


def test_a_wrong_or_missing_state_is_refused_before_the_code_is_used() -> None:
    provider = FakeProvider()
    rp = party(provider)
    _, flow = begun(rp)
    assert "state does not match" in refusal(rp, flow, {"code": "c", "state": "forged"})
    assert "state does not match" in refusal(rp, flow, {"code": "c"})
    assert "not started in this browser" in refusal(rp, None, {"code": "c", "state": flow.state})
    # An error answer under another state is not shown: it may be someone else's.
    assert "state" in refusal(rp, flow, {"error": "access_denied", "state": "x"})
    assert "access_denied" in refusal(rp, flow, {"error": "access_denied", "state": flow.state})
    assert "another identity provider" in refusal(
        rp, flow, {"code": "c", "state": flow.state, "iss": "https://evil.example"}
    )
    assert provider.posted == []


def test_a_flow_older_than_ten_minutes_is_refused() -> None:
    provider = FakeProvider()
    now = [1_000_000.0]
    rp = party(provider, clock=lambda: now[0])
    _, flow = begun(rp)
    now[0] += 601
    assert "took too long" in refusal(rp, flow, {"code": "c", "state": flow.state})


@pytest.mark.parametrize(
    ("claims", "said"),
    [
        ({"nonce": "another"}, "nonce does not match"),
        ({"nonce": None}, "nonce does not match"),
        ({"aud": "another-client"}, "another application"),
        ({"aud": [CLIENT, "another"], "azp": "another"}, "another application"),
        ({"iss": "https://evil.example"}, "another issuer"),
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"sub": None}, "lacks its `sub`"),
    ],
)
def test_an_id_token_that_does_not_check_out_is_refused(claims: dict[str, Any], said: str) -> None:
    provider = FakeProvider()
    rp = party(provider)
    _, flow = begun(rp)
    provider.id_token = provider.sign(flow.nonce, **claims)
    assert said in refusal(rp, flow, {"code": "c", "state": flow.state})


def test_an_id_token_just_past_exp_within_the_leeway_verifies() -> None:
    provider = FakeProvider()
    rp = party(provider)
    _, flow = begun(rp)
    provider.id_token = provider.sign(flow.nonce, exp=int(time.time()) - 10)
    assert run(rp.finish(flow, {"code": "c", "state": flow.state})).sub == "user_a"


def test_unsigned_hmac_and_foreign_key_tokens_are_refused() -> None:
    provider = FakeProvider()
    rp = party(provider)
    _, flow = begun(rp)
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": CLIENT, "sub": "x", "iat": now, "exp": now + 60}
    forged = {
        "none": jwt.encode(claims | {"nonce": flow.nonce}, None, algorithm="none"),
        "HS256": jwt.encode(claims | {"nonce": flow.nonce}, "k" * 32, algorithm="HS256"),
    }
    for alg, token in forged.items():
        provider.id_token = token
        assert "RS256 or ES256" in refusal(rp, flow, {"code": "c", "state": flow.state}), alg
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    provider.id_token = jwt.encode(
        claims | {"nonce": flow.nonce}, stranger, algorithm="RS256", headers={"kid": "r1"}
    )
    assert "does not verify" in refusal(rp, flow, {"code": "c", "state": flow.state})
    provider.id_token = provider.sign(flow.nonce, kid="unknown")
    assert "key the identity provider lacks" in refusal(
        rp, flow, {"code": "c", "state": flow.state}
    )


def test_a_refused_code_and_an_answer_without_id_token_are_refused() -> None:
    provider = FakeProvider()

    async def refusing(url: str, form: dict[str, str], headers: dict[str, str]) -> httpx.Response:
        return httpx.Response(400, json={"error": "invalid_grant"})

    rp = RelyingParty(ISSUER, CLIENT, SECRET, fetch=provider.fetch, post=refusing)
    _, flow = begun(rp)
    assert "invalid_grant" in refusal(rp, flow, {"code": "c", "state": flow.state})
    provider.id_token = ""
    rp = party(provider)
    _, flow = begun(rp)
    assert "without an ID token" in refusal(rp, flow, {"code": "c", "state": flow.state})


def test_a_discovery_document_of_another_issuer_is_refused() -> None:
    provider = FakeProvider(issuer="https://evil.example")
    with pytest.raises(SignInRefused, match="names another issuer"):
        run(party(provider).begin(REDIRECT))


def test_a_sealed_flow_unseals_only_untouched_and_with_this_servers_secret() -> None:
    flow = Flow.new(REDIRECT, 1.0)
    sealed = flow.seal(b"k" * 32)
    assert Flow.unseal(b"k" * 32, sealed) == flow
    assert Flow.unseal(b"j" * 32, sealed) is None
    body, _, mac = sealed.rpartition(".")
    assert Flow.unseal(b"k" * 32, body[:-2] + "AA." + mac) is None
    assert Flow.unseal(b"k" * 32, None) is None and Flow.unseal(b"k" * 32, "junk") is None


def test_logout_goes_to_the_end_session_endpoint_when_the_provider_has_one() -> None:
    provider = FakeProvider()
    rp = party(provider)
    assert rp.logout_url("https://control.example/portal/") is None  # never discovered
    begun(rp)
    url = rp.logout_url("https://control.example/portal/")
    assert url is not None and url.startswith(f"{ISSUER}/session/end?")
    query = parse_qs(urlsplit(url).query)
    assert query == {
        "client_id": [CLIENT],
        "post_logout_redirect_uri": ["https://control.example/portal/"],
    }
    local = party(FakeProvider(end_session_endpoint=None))
    begun(local)
    assert local.logout_url("https://control.example/portal/") is None


def test_a_name_and_email_missing_from_the_id_token_come_from_userinfo_for_the_same_sub() -> None:
    provider = FakeProvider()
    rp = party(provider)
    _, flow = begun(rp)
    provider.id_token = provider.sign(flow.nonce, name=None, email=None)
    provider.claims = {"sub": "user_a", "given_name": "Ada", "family_name": "L", "email": "a@x"}
    assert run(rp.finish(flow, {"code": "c", "state": flow.state})) == Identity(
        "user_a", "Ada L", "a@x"
    )
    # Another subject's answer is not this person's.
    _, flow = begun(rp)
    provider.id_token = provider.sign(flow.nonce, email=None)
    provider.claims = {"sub": "user_b", "email": "b@x"}
    identity = run(rp.finish(flow, {"code": "c", "state": flow.state}))
    assert identity == Identity("user_a", "Ada Lovelace", "")
