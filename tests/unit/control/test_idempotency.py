"""The control plane's Idempotency-Key records: claim, replay, mismatch, in progress, a create
whose edge died after the upstream accepted it, an abandoned one, and expiry."""

from __future__ import annotations

import json

from control.store import idempotency as store
from control.store.wallet import DatabaseWallet
from proxy.core.idempotency import IN_PROGRESS, MISMATCH, NEW, REPLAY, TTL_SECONDS, body_hash
from proxy.core.wallet import Hold
from tests.unit.conftest import Control, ControlRunner

T0 = 1_800_000_000.0
A, B = body_hash({"model": "m", "content": [1]}), body_hash({"model": "m", "content": [2]})


def test_body_hash_ignores_key_order_and_null_fields_only() -> None:
    assert body_hash({"a": 1, "b": None, "c": [1, 2]}) == body_hash({"c": [1, 2], "a": 1})
    assert body_hash({"a": 1}) != body_hash({"a": 2})
    assert body_hash({"a": {"x": None}}) != body_hash({"a": {}})  # only top-level nulls


def test_claims_through_a_create_life(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        st = ctl.st
        assert (await store.claim(st, "org1", "k", A, "req-1", T0)).outcome == NEW
        assert (await store.claim(st, "org1", "k", A, "req-2", T0 + 1)).outcome == IN_PROGRESS
        assert (await store.claim(st, "org1", "k", B, "req-3", T0 + 1)).outcome == MISMATCH
        assert (await store.claim(st, "org2", "k", A, "req-4", T0 + 1)).outcome == NEW  # scoped
        await store.finish(st, "org1", "k", "req-1", 200, b'{"id":"cgt-1"}')
        replay = await store.claim(st, "org1", "k", A, "req-5", T0 + 2)
        assert (replay.outcome, replay.status, replay.body) == (REPLAY, 200, b'{"id":"cgt-1"}')
        late = await store.claim(st, "org1", "k", A, "req-6", T0 + TTL_SECONDS + 1)
        assert late.outcome == NEW  # a day later the key is new again

    control_plane(body)


def test_a_create_that_failed_frees_its_key(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        st = ctl.st
        assert (await store.claim(st, "org1", "k", A, "req-1", T0)).outcome == NEW
        await store.release(st, "org1", "k", "req-1")
        assert (await store.claim(st, "org1", "k", B, "req-2", T0 + 1)).outcome == NEW

    control_plane(body)


def test_after_a_crash_the_reservation_tells_the_task_or_the_key_is_taken_over(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        st, wallet = ctl.st, DatabaseWallet(ctl.st, clock=lambda: T0)
        org = await ctl.create_org()
        key = await ctl.create_key(org["id"])
        await wallet.grant(org["id"], 10**9, "t", "admin")
        # the edge died after the upstream accepted the create (the hold knows the task) ...
        assert (await store.claim(st, org["id"], "k1", A, "req-1", T0)).outcome == NEW
        hold = Hold("req-1", org["id"], key["id"], 100, "seedance-1-0-pro-250528", "default")
        assert await wallet.reserve(hold) is None
        await wallet.assign("req-1", "cgt-crashed")
        replay = await store.claim(st, org["id"], "k1", A, "req-2", T0 + 5)
        assert (replay.outcome, json.loads(replay.body or b"")) == (REPLAY, {"id": "cgt-crashed"})
        # ... or before it learned one: after the hold's crash timeout the key is taken over
        assert (await store.claim(st, org["id"], "k2", A, "req-3", T0)).outcome == NEW
        assert (await store.claim(st, org["id"], "k2", A, "req-4", T0 + 10)).outcome == IN_PROGRESS
        taken = await store.claim(st, org["id"], "k2", A, "req-5", T0 + store.ABANDONED_SECONDS + 1)
        assert taken.outcome == NEW

    control_plane(body)
