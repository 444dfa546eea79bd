"""Admin writes that race: two requests through the app at once, forced to interleave (each
reads the row before either writes, by a gate in the handler's read), end in a state one of
them alone, or both in turn, could have made: no rotation is lost under another, and no
revocation, closure or deletion is undone by a change that read the row before it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

import httpx
import pytest

from control.api import keys as keys_api
from control.api import orgs as orgs_api
from control.api import webhooks as webhooks_api
from proxy.core import keys as proxy_keys
from proxy.policy import Snapshot
from tests.unit.conftest import Control, ControlRunner, assert_error

WAIT = 5.0  # seconds a gate waits for the other request at most (a deadline, never a pause)


def gate_reads(monkeypatch: pytest.MonkeyPatch, module: ModuleType, name: str, first: int = 2):
    """The module's read `name` patched: each of its first `first` calls, having read, waits
    until all `first` have read. Later calls (the handlers' reads after writing) pass."""
    original = getattr(module, name)
    calls = 0
    every_read = asyncio.Event()

    async def read(*args: Any) -> Any:
        nonlocal calls
        row = await original(*args)
        calls += 1
        if calls <= first:
            if calls == first:
                every_read.set()
            await asyncio.wait_for(every_read.wait(), WAIT)
        return row

    monkeypatch.setattr(module, name, read)


class Held:
    """A request stopped after its read: `reached` is set once it has read, and it goes on
    once `release` is set."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.release = asyncio.Event()


def hold_first_read(monkeypatch: pytest.MonkeyPatch, module: ModuleType, name: str) -> Held:
    """The module's read `name` patched: its first call, having read, waits to be released.
    Every other call passes."""
    original = getattr(module, name)
    held = Held()

    async def read(*args: Any) -> Any:
        row = await original(*args)
        if not held.reached.is_set():
            held.reached.set()
            await asyncio.wait_for(held.release.wait(), WAIT)
        return row

    monkeypatch.setattr(module, name, read)
    return held


async def first_then(
    request: Awaitable[httpx.Response], held: Held, other: Callable[[], Awaitable[Any]]
) -> tuple[httpx.Response, Any]:
    """`request` started first and held after its read; `other` run to its end meanwhile;
    then `request` let go, to write on what it read before `other`."""
    task = asyncio.ensure_future(request)
    await asyncio.wait_for(held.reached.wait(), WAIT)
    result = await other()
    held.release.set()
    return await task, result


async def audit_of(ctl: Control, target: str) -> list[tuple[str, dict[str, Any]]]:
    found = await ctl.rows("SELECT action, detail FROM audit WHERE target=? ORDER BY id", target)
    return [(row["action"], json.loads(row["detail"])) for row in found]


def test_two_rotations_at_once_rotate_once_and_refuse_the_other(
    control_plane: ControlRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        key = await ctl.create_key(org["id"])
        original = key["key"]
        version = ctl.version
        gate_reads(monkeypatch, keys_api, "load_key")
        graces = (600, 3600)
        before = time.time()
        answers = await asyncio.gather(
            *(ctl.post(f"/v1/keys/{key['id']}/rotate", json={"grace_seconds": g}) for g in graces)
        )
        after = time.time()
        assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
        (won,) = [i for i, a in enumerate(answers) if a.status_code == 200]
        refused = answers[1 - won]
        assert_error(refused, 409, "Conflict")
        assert "rotated by another request" in refused.json()["error"]["message"]
        new = answers[won].json()
        grace = graces[won]

        # The key holds the winner's secret, and the original one for the winner's grace.
        (row,) = await ctl.rows("SELECT * FROM api_keys WHERE id=?", key["id"])
        assert proxy_keys.verify_secret(row["secret_hash"], new["key"])
        assert proxy_keys.verify_secret(row["previous_secret_hash"], original)
        assert before + grace <= row["previous_valid_until"] <= after + grace
        # As the edges see it: the new secret and the original one work during the grace,
        # the new one alone after it.
        assert ctl.version == version + 1  # published once: the refusal changed nothing
        policy = Snapshot.from_wire(ctl.snapshot).keys[key["id"]]
        assert policy.valid_hashes(after) == (row["secret_hash"], row["previous_secret_hash"])
        assert policy.valid_hashes(after + grace + 1) == (row["secret_hash"],)
        assert await audit_of(ctl, key["id"]) == [
            ("key.create", {"org_id": org["id"]}),
            ("key.rotate", {"grace_seconds": grace}),
        ]
        # A rotation after it applies to it: its secret becomes the previous one.
        again = await ctl.post(f"/v1/keys/{key['id']}/rotate", json={"grace_seconds": 60})
        assert again.status_code == 200, again.text
        policy = Snapshot.from_wire(ctl.snapshot).keys[key["id"]]
        assert proxy_keys.verify_secret(policy.previous_secret_hash, new["key"])
        assert proxy_keys.verify_secret(policy.secret_hash, again.json()["key"])

    control_plane(body)


def test_a_change_that_read_the_key_before_its_revocation_does_not_undo_it(
    control_plane: ControlRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        key = await ctl.create_key(org["id"])
        path = f"/v1/keys/{key['id']}"
        await ctl.patch(path, json={"status": "suspended"})
        held = hold_first_read(monkeypatch, keys_api, "load_key")
        patched, revoked = await first_then(
            ctl.patch(path, json={"status": "active", "name": "back"}),
            held,
            lambda: ctl.delete(path),
        )
        assert revoked.status_code == 200, revoked.text
        assert_error(patched, 409, "Conflict")
        (row,) = await ctl.rows(
            "SELECT status, name, revoked_at FROM api_keys WHERE id=?", key["id"]
        )
        assert (row["status"], row["name"]) == ("revoked", "ci") and row["revoked_at"]
        assert Snapshot.from_wire(ctl.snapshot).keys[key["id"]].status == "revoked"
        actions = [action for action, _ in await audit_of(ctl, key["id"])]
        assert actions == ["key.create", "key.suspend", "key.revoke"]

    control_plane(body)


def test_a_rotation_that_read_the_key_before_its_revocation_is_refused(
    control_plane: ControlRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        key = await ctl.create_key(org["id"])
        held = hold_first_read(monkeypatch, keys_api, "load_key")
        rotated, revoked = await first_then(
            ctl.post(f"/v1/keys/{key['id']}/rotate", json={"grace_seconds": 600}),
            held,
            lambda: ctl.delete(f"/v1/keys/{key['id']}"),
        )
        assert revoked.status_code == 200, revoked.text
        assert_error(rotated, 409, "Conflict")
        (row,) = await ctl.rows("SELECT * FROM api_keys WHERE id=?", key["id"])
        assert row["status"] == "revoked" and row["rotated_at"] is None
        assert row["previous_secret_hash"] is None and row["previous_valid_until"] is None
        assert proxy_keys.verify_secret(row["secret_hash"], key["key"])  # never rotated
        assert [a for a, _ in await audit_of(ctl, key["id"])] == ["key.create", "key.revoke"]

    control_plane(body)


def test_two_revocations_at_once_revoke_and_audit_once(
    control_plane: ControlRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        key = await ctl.create_key(org["id"])
        version = ctl.version
        gate_reads(monkeypatch, keys_api, "load_key")
        answers = await asyncio.gather(*(ctl.delete(f"/v1/keys/{key['id']}") for _ in range(2)))
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        assert answers[0].json()["revoked_at"] == answers[1].json()["revoked_at"]
        assert [a for a, _ in await audit_of(ctl, key["id"])] == ["key.create", "key.revoke"]
        assert ctl.version == version + 1

    control_plane(body)


def test_a_change_that_read_the_org_before_its_closure_does_not_reopen_it(
    control_plane: ControlRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        path = f"/v1/orgs/{org['id']}"
        await ctl.patch(path, json={"status": "suspended"})
        held = hold_first_read(monkeypatch, orgs_api, "load_org")
        patched, closed = await first_then(
            ctl.patch(path, json={"status": "active"}), held, lambda: ctl.delete(path)
        )
        assert closed.status_code == 200, closed.text
        assert_error(patched, 409, "Conflict")
        (row,) = await ctl.rows("SELECT status FROM orgs WHERE id=?", org["id"])
        assert row["status"] == "closed"
        assert Snapshot.from_wire(ctl.snapshot).orgs[org["id"]].status == "closed"
        assert [a for a, _ in await audit_of(ctl, org["id"])] == [
            "org.create",
            "org.update",
            "org.close",
        ]

    control_plane(body)


def test_a_key_made_for_an_org_closed_meanwhile_is_refused(
    control_plane: ControlRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        held = hold_first_read(monkeypatch, keys_api, "load_org")
        created, closed = await first_then(
            ctl.post(f"/v1/orgs/{org['id']}/keys", json={"name": "late"}),
            held,
            lambda: ctl.delete(f"/v1/orgs/{org['id']}"),
        )
        assert closed.status_code == 200, closed.text
        assert_error(created, 409, "Conflict")
        assert await ctl.rows("SELECT id FROM api_keys WHERE org_id=?", org["id"]) == []

    control_plane(body)


async def make_webhook(ctl: Control, org_id: str) -> dict[str, Any]:
    response = await ctl.post(
        f"/v1/orgs/{org_id}/webhooks", json={"url": "https://hooks.acme.example/nextapi"}
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_two_webhook_rotations_at_once_rotate_once_and_refuse_the_other(
    control_plane: ControlRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        hook = await make_webhook(ctl, org["id"])
        path = f"/v1/orgs/{org['id']}/webhooks/{hook['id']}/rotate"
        gate_reads(monkeypatch, webhooks_api, "load_webhook")
        graces = (600, 3600)
        answers = await asyncio.gather(*(ctl.post(path, json={"grace_seconds": g}) for g in graces))
        assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
        (won,) = [i for i, a in enumerate(answers) if a.status_code == 200]
        assert_error(answers[1 - won], 409, "Conflict")
        (row,) = await ctl.rows("SELECT * FROM webhooks WHERE id=?", hook["id"])
        assert row["secret"] == answers[won].json()["secret"]
        assert row["previous_secret"] == hook["secret"]  # the original signs during the grace
        assert row["previous_valid_until"] - row["updated_at"] == pytest.approx(graces[won])
        assert [d for a, d in await audit_of(ctl, hook["id"]) if a == "webhook.rotate"] == [
            {"grace_seconds": graces[won]}
        ]

    control_plane(body)


def test_a_webhook_change_that_read_it_before_its_deletion_does_not_bring_it_back(
    control_plane: ControlRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        hook = await make_webhook(ctl, org["id"])
        path = f"/v1/orgs/{org['id']}/webhooks/{hook['id']}"
        await ctl.patch(path, json={"status": "disabled"})
        held = hold_first_read(monkeypatch, webhooks_api, "load_webhook")
        patched, deleted = await first_then(
            ctl.patch(path, json={"status": "enabled"}), held, lambda: ctl.delete(path)
        )
        assert deleted.status_code == 200, deleted.text
        assert_error(patched, 404, "NotFound")
        (row,) = await ctl.rows("SELECT status FROM webhooks WHERE id=?", hook["id"])
        assert row["status"] == "deleted"
        assert hook["id"] not in Snapshot.from_wire(ctl.snapshot).orgs[org["id"]].webhooks.values()

    control_plane(body)
