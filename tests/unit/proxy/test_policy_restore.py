"""An edge restarted from its snapshot file: what the policy store takes from disk, how long it
decides on it, and how the poller resumes from it (proxy/policy.py, proxy/remote.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from proxy.policy import PolicyStore, Snapshot
from proxy.policy_file import FILE_NAME, SnapshotFile, restore
from proxy.remote import poll_snapshots
from tests.unit.proxy.test_policy_file import CONTROL, HOUR, T0, TOKEN, Clock, wire


def snap(version: int, epoch: str = "e1") -> Snapshot:
    return Snapshot.from_wire(wire(version, epoch))


def test_a_file_never_replaces_a_snapshot_in_memory() -> None:
    store = PolicyStore()
    assert store.replace(snap(5))
    assert not store.restore(snap(3), T0)  # older
    assert not store.restore(snap(9), T0)  # newer: memory came from the control plane
    assert not store.restore(snap(9, epoch="other"), T0)
    assert (store.snapshot.version, store.snapshot.epoch, store.provisional) == (5, "e1", False)


def test_a_restored_snapshot_yields_to_the_control_planes_first_answer() -> None:
    store = PolicyStore()
    assert store.restore(snap(5), T0)
    assert store.provisional
    # Even an older version: the control plane is the authority (say, its database restored).
    assert store.replace(snap(3))
    assert store.snapshot.version == 3 and not store.provisional
    assert not store.replace(snap(2))  # from then on, versions only move forward again


def test_current_needs_a_snapshot_and_one_confirmed_within_the_max_age() -> None:
    clock = Clock()
    store = PolicyStore(clock=clock)
    store.max_age = HOUR
    assert not store.current(T0)  # never had one
    store.restore(snap(5), T0 - HOUR + 10)  # the file says: confirmed 59 min 50 s ago
    assert store.current(T0)
    assert not store.current(T0 + 11)
    clock.now = T0 + 11
    store.confirm()
    assert store.current(T0 + 11) and store.current(T0 + HOUR)
    store.max_age = None  # the embedded control plane: no limit
    assert store.current(T0 + 100 * HOUR)


class ScriptedControl:
    """The control plane's snapshot endpoint as the poller sees it: answers from a script
    (a wire snapshot, or an exception to raise), recording each call's `after` and `wait`."""

    def __init__(self, *answers: dict[str, Any] | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[int, float]] = []
        self.done = asyncio.Event()
        self.current_url = CONTROL  # the one that answers (ControlClient.current_url)

    async def snapshot(self, after: int, wait: float) -> dict[str, Any]:
        self.calls.append((after, wait))
        if not self.answers:
            self.done.set()
            await asyncio.Event().wait()  # a long poll that never returns
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def run_poller(control: ScriptedControl, store: PolicyStore, saved: SnapshotFile | None) -> None:
    async def scenario() -> None:
        poller = asyncio.create_task(poll_snapshots(control, store, 20.0, saved))  # type: ignore[arg-type]
        await asyncio.wait_for(control.done.wait(), 10)
        poller.cancel()

    asyncio.run(scenario())


def test_the_poller_resumes_from_the_files_version_and_keeps_the_newer_one(
    tmp_path: Path,
) -> None:
    clock = Clock(T0 + 600)
    saved = SnapshotFile(tmp_path / FILE_NAME, TOKEN, CONTROL, max_age=24 * HOUR, clock=clock)
    saved.write(wire(5), T0)
    store = PolicyStore(clock=clock)
    assert asyncio.run(restore(store, saved))
    before = (tmp_path / FILE_NAME).read_bytes()

    down = httpx.ConnectError("control plane away")
    control = ScriptedControl(down, wire(5), wire(6))
    run_poller(control, store, saved)

    # Asked from the file's version, without waiting until the control plane first answered;
    # then long polls from what it holds.
    assert control.calls == [(5, 0.0), (5, 0.0), (5, 20.0), (6, 20.0)]
    assert store.snapshot.version == 6 and not store.provisional
    assert store.confirmed_at == T0 + 600
    reread = SnapshotFile(tmp_path / FILE_NAME, TOKEN, CONTROL, max_age=24 * HOUR, clock=clock)
    loaded = reread.load()
    assert loaded is not None and loaded.snapshot.version == 6
    assert loaded.written_at == T0 + 600
    assert before != (tmp_path / FILE_NAME).read_bytes()


def test_an_answer_that_changes_nothing_confirms_but_does_not_rewrite_the_file(
    tmp_path: Path,
) -> None:
    clock = Clock(T0)
    saved = SnapshotFile(tmp_path / FILE_NAME, TOKEN, CONTROL, max_age=24 * HOUR, clock=clock)
    store = PolicyStore(clock=clock)
    control = ScriptedControl(wire(5))
    run_poller(control, store, saved)
    first = (tmp_path / FILE_NAME).read_bytes()

    clock.now = T0 + 120
    control = ScriptedControl(wire(5))
    run_poller(control, store, saved)
    assert store.confirmed_at == T0 + 120
    assert (tmp_path / FILE_NAME).read_bytes() == first


def test_a_failed_fetch_confirms_nothing() -> None:
    clock = Clock(T0)
    store = PolicyStore(clock=clock)
    store.replace(snap(5))
    clock.now = T0 + 60
    run_poller(ScriptedControl(httpx.ReadTimeout("slow")), store, None)
    assert store.confirmed_at == T0
