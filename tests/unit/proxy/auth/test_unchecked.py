"""A key the edge cannot check (no snapshot yet, or one too old) is a 503, never a 401:
proxy/auth/authenticator.py decides, addons/auth.py answers."""

from __future__ import annotations

import asyncio

from mitmproxy.test import taddons

from addons.auth import Auth
from proxy.auth.authenticator import AuthFailure, Identity, KeyAuthenticator, Unchecked
from proxy.context import METADATA_KEY
from proxy.core import keys
from proxy.policy import PolicyStore, Snapshot
from proxy.services import EdgeServices
from tests.unit.proxy.auth.test_authn import KEY, bearer, wire
from tests.unit.test_addons import error_of, flow, with_context

T0 = 1_750_000_000.0


def test_before_any_snapshot_a_well_formed_key_is_unchecked_and_costs_no_hashing() -> None:
    async def scenario() -> None:
        auth = KeyAuthenticator(PolicyStore())
        assert await auth.authenticate(bearer(KEY)) is Unchecked.NO_POLICY
        other, _ = keys.generate_key("live")
        assert await auth.authenticate(bearer(other)) is Unchecked.NO_POLICY
        # What is invalid whatever the policy stays a 401.
        assert await auth.authenticate(None) is AuthFailure.MISSING
        assert await auth.authenticate("Bearer nk_live_nope") is AuthFailure.MALFORMED
        assert auth.verifications == 0
        auth.close()

    asyncio.run(scenario())


def test_once_a_snapshot_is_held_an_unknown_key_is_invalid_again() -> None:
    async def scenario() -> None:
        store = PolicyStore()
        store.restore(Snapshot.from_wire(wire(3)), T0)
        auth = KeyAuthenticator(store, clock=lambda: T0)
        assert isinstance(await auth.authenticate(bearer(KEY)), Identity)
        other, _ = keys.generate_key("live")
        assert await auth.authenticate(bearer(other)) is AuthFailure.UNKNOWN
        auth.close()

    asyncio.run(scenario())


def test_a_snapshot_past_its_max_age_leaves_every_key_unchecked_until_confirmed() -> None:
    async def scenario() -> None:
        now = [T0]
        store = PolicyStore(clock=lambda: now[0])
        store.max_age = 3600
        store.replace(Snapshot.from_wire(wire(3)))
        auth = KeyAuthenticator(store, clock=lambda: now[0])
        assert isinstance(await auth.authenticate(bearer(KEY)), Identity)
        now[0] = T0 + 3601
        assert await auth.authenticate(bearer(KEY)) is Unchecked.NO_POLICY
        other, _ = keys.generate_key("live")
        assert await auth.authenticate(bearer(other)) is Unchecked.NO_POLICY
        store.confirm()  # the control plane answered again
        assert isinstance(await auth.authenticate(bearer(KEY)), Identity)
        auth.close()

    asyncio.run(scenario())


def test_the_addon_answers_503_with_retry_after_and_counts_no_failed_authentication() -> None:
    async def scenario() -> None:
        services = EdgeServices()  # an edge apart that has no snapshot yet
        failures: list[object] = []

        async def failed(address: object, key_id: object) -> None:
            failures.append((address, key_id))

        services.gatekeeper.failed = failed  # type: ignore[method-assign]
        auth = Auth(services)
        with taddons.context(auth):
            unchecked = with_context(flow(authorization=f"Bearer {KEY}"))
            await auth.requestheaders(unchecked)
            assert unchecked.response.status_code == 503
            assert unchecked.response.headers["Retry-After"] == "5"
            assert "x-should-retry" not in unchecked.response.headers
            assert error_of(unchecked)["code"] == "ServiceUnavailable"
            assert unchecked.metadata[METADATA_KEY].security is None
            malformed = with_context(flow(authorization="Bearer nope"))
            await auth.requestheaders(malformed)
            assert malformed.response.status_code == 401
        assert len(failures) == 1  # the malformed key only
        services.auth.close()

    asyncio.run(scenario())
