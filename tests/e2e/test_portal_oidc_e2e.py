"""The portal's relying party (control/customers/portal/oidc.py) against the real OIDC provider
on loopback (oidc-provider), without a browser: discovery, the code flow with PKCE through the
provider's login form, the exchange with client_secret_basic, the ID token verified against the
provider's JWKS; and what the provider refuses: a code used twice, a wrong client secret, a
code verifier of another flow."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import httpx
import pytest

from control.customers.portal.oidc import Flow, Identity, RelyingParty, SignInRefused
from tests.e2e.oidc_provider import USER_A, OidcProvider, sign_in_without_a_browser

REDIRECT = "http://127.0.0.1:9/portal/callback"  # never reached: the test stops at the redirect


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    started = OidcProvider("portal-e2e", secrets.token_urlsafe(24), [REDIRECT], [])
    yield started
    started.stop()


def code_for(rp: RelyingParty, login: str = USER_A[0]) -> tuple[Flow, dict[str, str]]:
    """A flow begun by `rp`, and the callback's query once `login` signed in at the provider."""
    url, flow = asyncio.run(rp.begin(REDIRECT))
    with httpx.Client(timeout=10) as browser:
        callback = sign_in_without_a_browser(browser, url, login)
    return flow, dict(callback.params)


def test_the_code_flow_signs_in_against_the_real_provider(provider: OidcProvider) -> None:
    rp = RelyingParty(provider.issuer, provider.client_id, provider.client_secret)
    flow, params = code_for(rp)
    assert params["state"] == flow.state and params["iss"] == provider.issuer
    identity = asyncio.run(rp.finish(flow, params))
    assert identity == Identity(*USER_A)
    assert rp.provider is not None
    assert rp.provider.end_session_endpoint == f"{provider.issuer}/session/end"
    # The code is single use: the provider refuses it the second time.
    with pytest.raises(SignInRefused, match="invalid_grant"):
        asyncio.run(rp.finish(flow, params))


def test_the_provider_refuses_a_wrong_secret_and_another_flows_verifier(
    provider: OidcProvider,
) -> None:
    wrong = RelyingParty(provider.issuer, provider.client_id, "not-the-secret")
    flow, params = code_for(wrong)
    with pytest.raises(SignInRefused, match="invalid_client"):
        asyncio.run(wrong.finish(flow, params))

    rp = RelyingParty(provider.issuer, provider.client_id, provider.client_secret)
    flow, params = code_for(rp, "user_b")
    other = Flow.new(REDIRECT, flow.started_at)
    stolen = Flow(flow.state, flow.nonce, other.code_verifier, REDIRECT, flow.started_at)
    with pytest.raises(SignInRefused, match="invalid_grant"):
        asyncio.run(rp.finish(stolen, params))
