import asyncio
from typing import Any

from proxy.auth.authenticator import AuthFailure, Identity, KeyAuthenticator
from proxy.core import keys
from proxy.policy import PolicyStore, Snapshot

KEY, HASH = keys.generate_key("live")
KEY_ID = keys.parse_key(KEY).key_id  # type: ignore[union-attr]


def wire(version: int, **key_fields: Any) -> dict[str, Any]:
    org_status = key_fields.pop("org_status", "active")
    key = {"id": KEY_ID, "org_id": "org_1", "status": "active", "secret_hash": HASH}
    key.update(key_fields)
    return {"version": version, "orgs": [{"id": "org_1", "status": org_status}], "keys": [key]}


def store_with(**key_fields: Any) -> PolicyStore:
    store = PolicyStore()
    store.replace(Snapshot.from_wire(wire(1, **key_fields)))
    return store


def bearer(key: str) -> str:
    return f"Bearer {key}"


def test_valid_key_authenticates_and_is_cached() -> None:
    async def scenario() -> None:
        auth = KeyAuthenticator(store_with())
        for _ in range(5):
            result = await auth.authenticate(bearer(KEY))
            assert isinstance(result, Identity) and result.key.key_id == KEY_ID
        assert auth.verifications == 1
        auth.close()

    asyncio.run(scenario())


def test_concurrent_first_uses_verify_once() -> None:
    async def scenario() -> None:
        auth = KeyAuthenticator(store_with())
        results = await asyncio.gather(*(auth.authenticate(bearer(KEY)) for _ in range(20)))
        assert all(isinstance(r, Identity) for r in results)
        assert auth.verifications == 1
        auth.close()

    asyncio.run(scenario())


def test_missing_malformed_unknown_are_refused_without_hashing() -> None:
    async def scenario() -> None:
        auth = KeyAuthenticator(store_with())
        assert await auth.authenticate(None) is AuthFailure.MISSING
        assert await auth.authenticate("Basic abc") is AuthFailure.MISSING
        assert await auth.authenticate("Bearer nk_live_nope") is AuthFailure.MALFORMED
        other, _ = keys.generate_key("live")
        assert await auth.authenticate(bearer(other)) is AuthFailure.UNKNOWN
        assert auth.verifications == 0
        auth.close()

    asyncio.run(scenario())


def test_wrong_secret_for_known_id_is_refused_and_remembered() -> None:
    async def scenario() -> None:
        auth = KeyAuthenticator(store_with())
        wrong = keys.format_key("live", KEY_ID, keys.new_secret())
        assert await auth.authenticate(bearer(wrong)) is AuthFailure.UNKNOWN
        assert await auth.authenticate(bearer(wrong)) is AuthFailure.UNKNOWN
        assert auth.verifications == 1
        auth.close()

    asyncio.run(scenario())


def test_revocation_applies_on_the_next_request_even_when_cached() -> None:
    async def scenario() -> None:
        store = store_with()
        auth = KeyAuthenticator(store)
        assert isinstance(await auth.authenticate(bearer(KEY)), Identity)
        store.replace(Snapshot.from_wire(wire(2, status="revoked")))
        assert await auth.authenticate(bearer(KEY)) is AuthFailure.REVOKED
        auth.close()

    asyncio.run(scenario())


def test_rotation_grace_then_old_secret_refused() -> None:
    async def scenario() -> None:
        now = [1000.0]
        store = store_with()
        auth = KeyAuthenticator(store, clock=lambda: now[0])
        assert isinstance(await auth.authenticate(bearer(KEY)), Identity)
        new_key, new_hash = keys.generate_key("live", KEY_ID)
        rotated = wire(
            2, secret_hash=new_hash, previous_secret_hash=HASH, previous_valid_until=1060.0
        )
        store.replace(Snapshot.from_wire(rotated))
        assert isinstance(await auth.authenticate(bearer(KEY)), Identity)
        assert isinstance(await auth.authenticate(bearer(new_key)), Identity)
        now[0] = 1061.0
        assert await auth.authenticate(bearer(KEY)) is AuthFailure.UNKNOWN
        assert isinstance(await auth.authenticate(bearer(new_key)), Identity)
        auth.close()

    asyncio.run(scenario())


def test_expired_key_and_org_states() -> None:
    async def scenario() -> None:
        now = [1000.0]
        auth = KeyAuthenticator(store_with(expires_at=999.0), clock=lambda: now[0])
        assert await auth.authenticate(bearer(KEY)) is AuthFailure.EXPIRED
        auth.close()
        auth = KeyAuthenticator(store_with(org_status="suspended"))
        assert await auth.authenticate(bearer(KEY)) is AuthFailure.ORG_SUSPENDED
        auth.close()
        auth = KeyAuthenticator(store_with(org_status="closed"))
        assert await auth.authenticate(bearer(KEY)) is AuthFailure.ORG_CLOSED
        auth.close()
        auth = KeyAuthenticator(store_with(status="suspended"))
        assert await auth.authenticate(bearer(KEY)) is AuthFailure.SUSPENDED
        auth.close()

    asyncio.run(scenario())


def test_older_snapshot_is_ignored_unless_from_another_epoch() -> None:
    store = store_with()
    assert not store.replace(Snapshot.from_wire(wire(1, status="revoked")))
    assert store.snapshot.keys[KEY_ID].status == "active"
    # A control plane on a new database counts versions from 1 again.
    assert store.replace(Snapshot.from_wire(wire(1, status="revoked") | {"epoch": "new"}))
    assert store.snapshot.keys[KEY_ID].status == "revoked"
