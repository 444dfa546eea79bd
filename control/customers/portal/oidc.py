"""The portal as an OpenID Connect relying party: the provider's discovery document (fetched
once and kept), the authorization code flow with PKCE (S256), `state` and `nonce`, the token
exchange (client_secret_basic or client_secret_post, as the provider allows; none for a public
client), the ID token verified (RS256 or ES256 against the provider's JWKS; iss, aud, exp with a
small leeway, nonce), and the provider's end_session_endpoint for signing out. Any OIDC issuer
works: Clerk's OAuth applications, or the test suite's oidc-provider on loopback. A refusal
says why in words (SignInRefused); no token nor code is ever logged."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from control.customers.portal.keys import Fetch, ProviderKeys, SignInRefused, fetch_json

LEEWAY_SECONDS = 30  # a provider's clock this far off still verifies
DISCOVERY_SECONDS = 3600.0  # the discovery document is fetched again after this long
FLOW_SECONDS = 600  # a sign-in is finished within this long, or started again
ALGORITHMS = ("RS256", "ES256")
SCOPES = "openid profile email"


@dataclass(frozen=True)
class Provider:
    """What the portal uses of the provider's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None
    userinfo_endpoint: str | None
    token_auth_methods: tuple[str, ...]
    id_token_algorithms: tuple[str, ...]

    @classmethod
    def of(cls, document: Mapping[str, Any], issuer: str) -> Provider:
        if document.get("issuer") != issuer:
            # OIDC Discovery §4.3: a document naming another issuer is not this provider's.
            raise SignInRefused("The identity provider's discovery document names another issuer.")
        try:
            endpoints = {
                name: str(document[name])
                for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")
            }
        except KeyError as missing:
            raise SignInRefused(f"The identity provider publishes no {missing}.") from None
        return cls(
            issuer=issuer,
            end_session_endpoint=document.get("end_session_endpoint") or None,
            userinfo_endpoint=document.get("userinfo_endpoint") or None,
            # The spec's default when the provider lists none: client_secret_basic.
            token_auth_methods=tuple(
                document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
            ),
            id_token_algorithms=tuple(
                document.get("id_token_signing_alg_values_supported") or ["RS256"]
            ),
            **endpoints,
        )


@dataclass(frozen=True)
class Flow:
    """One sign-in under way: what the browser keeps (signed, in a cookie) until the callback."""

    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str
    started_at: float

    @classmethod
    def new(cls, redirect_uri: str, now: float) -> Flow:
        return cls(
            state=secrets.token_urlsafe(24),
            nonce=secrets.token_urlsafe(24),
            code_verifier=secrets.token_urlsafe(48),  # 64 characters: RFC 7636's 43..128
            redirect_uri=redirect_uri,
            started_at=now,
        )

    @property
    def code_challenge(self) -> str:
        digest = hashlib.sha256(self.code_verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def seal(self, secret: bytes) -> str:
        """The flow as a cookie value: its JSON, base64url, and an HMAC over it."""
        body = base64.urlsafe_b64encode(json.dumps(self.__dict__).encode()).decode().rstrip("=")
        return f"{body}.{_mac(secret, body)}"

    @classmethod
    def unseal(cls, secret: bytes, sealed: str | None) -> Flow | None:
        """The flow a cookie holds, if this server sealed it; None otherwise."""
        body, _, mac = (sealed or "").rpartition(".")
        if not body or not hmac.compare_digest(mac, _mac(secret, body)):
            return None
        try:
            fields = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            return cls(**fields)
        except (ValueError, TypeError):
            return None


def _mac(secret: bytes, body: str) -> str:
    digest = hmac.new(secret, b"nextapi-portal-flow:" + body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True)
class Identity:
    """Who signed in, from the verified ID token."""

    sub: str
    name: str
    email: str


Post = Callable[[str, dict[str, str], dict[str, str]], Awaitable[httpx.Response]]
UserInfo = Callable[[str, str], Awaitable[dict[str, Any]]]


async def post_form(url: str, form: dict[str, str], headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10.0) as client:
        return await client.post(url, data=form, headers={"Accept": "application/json", **headers})


async def fetch_userinfo(url: str, access_token: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.get(
            url, headers={"Accept": "application/json", "Authorization": f"Bearer {access_token}"}
        )
        response.raise_for_status()
        return response.json()


class RelyingParty:
    """The portal's client of one OIDC provider (`issuer`), registered there as `client_id`."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str = "",
        *,
        fetch: Fetch = fetch_json,
        post: Post = post_form,
        userinfo: UserInfo = fetch_userinfo,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not client_id:
            raise ValueError("portal_oidc_client_id is needed with portal_oidc_issuer")
        self.issuer = issuer  # as the provider spells it: ID tokens name it exactly
        self.client_id, self.client_secret = client_id, client_secret
        self.fetch, self.post, self.userinfo, self.clock = fetch, post, userinfo, clock
        self._provider: Provider | None = None
        self._discovered_at = 0.0
        self._keys = ProviderKeys(fetch, clock)

    @property
    def provider(self) -> Provider | None:
        """The discovery document as last fetched (None before the first sign-in)."""
        return self._provider

    async def discover(self) -> Provider:
        now = self.clock()
        if self._provider is not None and now - self._discovered_at < DISCOVERY_SECONDS:
            return self._provider
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            document = await self.fetch(url)
        except (httpx.HTTPError, ValueError):
            if self._provider is not None:
                return self._provider  # the one known keeps working while the provider is away
            raise SignInRefused(
                "The identity provider cannot be reached: try again shortly."
            ) from None
        self._provider = Provider.of(document, self.issuer)
        self._discovered_at = now
        return self._provider

    async def begin(self, redirect_uri: str) -> tuple[str, Flow]:
        """The provider's authorization URL to send the browser to, and the flow to keep."""
        provider = await self.discover()
        flow = Flow.new(redirect_uri, self.clock())
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": SCOPES,
            "state": flow.state,
            "nonce": flow.nonce,
            "code_challenge": flow.code_challenge,
            "code_challenge_method": "S256",
        }
        return f"{provider.authorization_endpoint}?{urlencode(query)}", flow

    async def finish(self, flow: Flow | None, params: Mapping[str, str]) -> Identity:
        """The identity of a callback (`params`: its query) for the flow this browser began."""
        if flow is None or self.clock() - flow.started_at > FLOW_SECONDS:
            raise SignInRefused(
                "This sign-in was not started in this browser, or took too long: start again."
            )
        presented = params.get("state", "")
        if not presented or not hmac.compare_digest(presented, flow.state):
            raise SignInRefused("The sign-in's state does not match: start again.")
        if "iss" in params and params["iss"] != self.issuer:
            # RFC 9207: the answer came from another provider than the one asked (a mix-up).
            raise SignInRefused("The sign-in was answered by another identity provider.")
        if "error" in params:
            # The provider's own words (e.g. access_denied), not a page of its choosing.
            raise SignInRefused(f"The identity provider refused the sign-in: {params['error']}.")
        code = params.get("code")
        if not code:
            raise SignInRefused("The identity provider sent no authorization code.")
        id_token, access_token = await self.exchange(code, flow)
        identity = await self.verify_id_token(id_token, flow.nonce)
        if identity.name and identity.email:
            return identity
        return await self._completed(identity, access_token)

    async def exchange(self, code: str, flow: Flow) -> tuple[str, str]:
        """The ID token and access token the token endpoint gives for `code` (with the flow's
        PKCE verifier)."""
        provider = await self.discover()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.redirect_uri,
            "code_verifier": flow.code_verifier,
        }
        headers: dict[str, str] = {}
        methods = provider.token_auth_methods
        if not self.client_secret:
            form["client_id"] = self.client_id  # a public client: PKCE alone
        elif "client_secret_basic" in methods or "client_secret_post" not in methods:
            pair = f"{_form_encoded(self.client_id)}:{_form_encoded(self.client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form |= {"client_id": self.client_id, "client_secret": self.client_secret}
        try:
            response = await self.post(provider.token_endpoint, form, headers)
        except httpx.HTTPError:
            raise SignInRefused("The identity provider cannot be reached: try again.") from None
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if response.status_code != 200 or not isinstance(answer, dict):
            error = answer.get("error", response.status_code) if isinstance(answer, dict) else ""
            raise SignInRefused(f"The identity provider refused the code ({error}): start again.")
        id_token = answer.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise SignInRefused("The identity provider answered without an ID token.")
        access_token = answer.get("access_token")
        return id_token, access_token if isinstance(access_token, str) else ""

    async def _completed(self, identity: Identity, access_token: str) -> Identity:
        """The name and email from the userinfo endpoint, for a provider whose ID token lacks
        them (OIDC lets it keep them there); its answer counts only for the same `sub` (Core
        5.3.2). Unreachable or refusing, the ID token's identity stands as it is."""
        provider = self._provider
        if provider is None or provider.userinfo_endpoint is None or not access_token:
            return identity
        try:
            claims = await self.userinfo(provider.userinfo_endpoint, access_token)
        except (httpx.HTTPError, ValueError):
            return identity
        if not isinstance(claims, dict) or claims.get("sub") != identity.sub:
            return identity
        return Identity(
            sub=identity.sub,
            name=identity.name or _name(claims),
            email=identity.email or _text(claims.get("email")),
        )

    async def verify_id_token(self, id_token: str, nonce: str) -> Identity:
        provider = await self.discover()
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise SignInRefused("The ID token is not a JWT.") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS or algorithm not in provider.id_token_algorithms:
            raise SignInRefused("The ID token must be signed with RS256 or ES256.")
        key = await self._keys.key(header.get("kid"), provider.jwks_uri)
        try:
            claims = jwt.decode(
                id_token,
                key,
                algorithms=[algorithm],
                audience=self.client_id,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise SignInRefused("The ID token has expired: sign in again.") from None
        except jwt.InvalidAudienceError:
            raise SignInRefused("The ID token was issued to another application.") from None
        except jwt.InvalidIssuerError:
            raise SignInRefused("The ID token comes from another issuer.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise SignInRefused(f"The ID token lacks its `{exc.claim}` claim.") from None
        except jwt.PyJWTError:
            raise SignInRefused("The ID token's signature does not verify.") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise SignInRefused("The ID token was issued to another application.")  # Core §3.1.3.7
        presented = claims.get("nonce")
        if not isinstance(presented, str) or not hmac.compare_digest(presented, nonce):
            raise SignInRefused("The ID token's nonce does not match this sign-in: start again.")
        return Identity(
            sub=str(claims["sub"]),
            name=_name(claims),
            email=_text(claims.get("email")),
        )

    def logout_url(self, post_logout_redirect_uri: str) -> str | None:
        """Where to send the browser to end its session at the provider too (None: the provider
        has no end_session_endpoint, or was never discovered, so signing out stays local)."""
        provider = self._provider
        if provider is None or provider.end_session_endpoint is None:
            return None
        query = {"client_id": self.client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
        return f"{provider.end_session_endpoint}?{urlencode(query)}"


def _form_encoded(value: str) -> str:
    """RFC 6749 §2.3.1: the id and secret are form-urlencoded before the Basic pair is built."""
    return urlencode({"": value})[1:]


def _name(claims: Mapping[str, Any]) -> str:
    given_and_family = (_text(claims.get(c)) for c in ("given_name", "family_name"))
    return _text(claims.get("name")) or " ".join(given_and_family).strip()


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""
