"""Tasks of creates no edge answered (control/jobs/orphans.py) and the hold sweep around them
(control/jobs/holds.py): matched to their holds by fingerprint and time, charged once, reported
once when they fit no hold, and no hold released before the scan has seen its every possible
task, nor while the upstream cannot be listed (for at most give_up_after).

The upstream is the simulator, served over HTTP on loopback with the test's clock; the control
plane's state is a real SQLite file."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from control.jobs.holds import HoldSweeper
from control.jobs.orphans import HoldTimes, OrphanFinder, fits, pair, status
from control.jobs.upstream import UpstreamTasks
from control.store import db as dbm
from control.store.state import ControlState
from control.store.wallet import DatabaseWallet
from launch.serving import AppServer
from proxy.core.seedance.catalog import Catalog
from proxy.core.wallet import Hold
from simulator.app import create_app as simulator_app
from simulator.config import SimulatorConfig

CATALOG = Catalog.load()
MODEL = "seedance-1-0-pro-250528"
OTHER_MODEL = "seedance-1-0-pro-fast-251015"
T0 = 1_800_000_000.0
TIMES = HoldTimes(stale_after=300, create_seconds=60, give_up_after=3600, clock_slack=5)
UPSTREAM_KEY = "sim-upstream-key"


def hold(hold_id: str, at: float, **fields: Any) -> dict[str, Any]:
    row = {
        "id": hold_id,
        "org_id": "org_a",
        "key_id": "key_a",
        "amount": 1000,
        "unit_price": "1500000",
        "callback_webhook": None,
        "model": MODEL,
        "tier": "default",
        "generate_audio": None,
        "resolution": "480p",
        "video_input": 0,
        "created_at": at,
    }
    return row | fields


def task(task_id: str, at: float, **fields: Any) -> dict[str, Any]:
    body = {"id": task_id, "model": MODEL, "status": "succeeded", "created_at": int(at)}
    return body | {"service_tier": "default", "resolution": "480p"} | fields


# --- matching ----------------------------------------------------------------------------------


def test_a_task_fits_a_hold_of_its_model_family_tier_resolution_and_time() -> None:
    h = hold("r1", T0)
    assert fits(task("t", T0 + 2), h, TIMES, CATALOG)
    assert fits(task("t", T0 + 2, model="doubao-seedance-1-0-pro-250528"), h, TIMES, CATALOG)
    assert not fits(task("t", T0 + 2, model=OTHER_MODEL), h, TIMES, CATALOG)
    assert not fits(task("t", T0 + 2, service_tier="flex"), h, TIMES, CATALOG)
    assert not fits(task("t", T0 + 2, resolution="1080p"), h, TIMES, CATALOG)
    # Made before the hold (past the clock slack), or after the create's timeout: not its task.
    assert not fits(task("t", T0 - 6), h, TIMES, CATALOG)
    assert fits(task("t", T0 + 64), h, TIMES, CATALOG)
    assert not fits(task("t", T0 + 66), h, TIMES, CATALOG)
    assert not fits(task("t", T0 + 2, created_at="soon"), h, TIMES, CATALOG)


def test_alike_holds_are_taken_oldest_first_and_a_task_left_over_is_unmatched() -> None:
    holds = [hold("r2", T0 + 1), hold("r1", T0)]
    tasks = [task("t3", T0 + 3), task("t1", T0 + 1), task("t2", T0 + 2)]
    paired, left = pair(tasks, holds, TIMES, CATALOG)
    assert [(t["id"], h["id"]) for t, h in paired] == [("t1", "r1"), ("t2", "r2")]
    assert [(t["id"], reason, n) for t, reason, n in left] == [("t3", "unmatched", 0)]


def test_a_task_that_fits_holds_of_two_orgs_is_billed_to_neither() -> None:
    holds = [hold("r1", T0), hold("r2", T0, org_id="org_b", key_id="key_b")]
    paired, left = pair([task("t1", T0 + 1)], holds, TIMES, CATALOG)
    assert paired == []
    assert [(t["id"], reason, n) for t, reason, n in left] == [("t1", "ambiguous", 2)]
    # Different prices of one org are not alike either: the charge would depend on the choice.
    holds = [hold("r1", T0), hold("r2", T0, unit_price="3000000")]
    assert pair([task("t1", T0 + 1)], holds, TIMES, CATALOG)[1][0][1] == "ambiguous"


def test_the_release_waits_for_every_task_a_hold_could_have_made() -> None:
    now = T0 + 1000
    assert TIMES.decided_before(now) == now - 305
    # A hold made then could have a task up to create_seconds + slack later, still undecided.
    assert TIMES.releasable_before(now) == now - 305 - 65


# --- the scan, against the simulator -----------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Env:
    def __init__(self, state: ControlState, clock: Clock, upstream_url: str) -> None:
        self.state = state
        self.clock = clock
        self.wallet = DatabaseWallet(state, clock=clock)
        self.upstream_url = upstream_url
        self.upstream = UpstreamTasks(upstream_url, UPSTREAM_KEY)
        self.finder = OrphanFinder(state, self.upstream, TIMES, clock)
        self.sweeper = HoldSweeper(self.wallet, times=TIMES, finder=self.finder)

    async def reserve(self, request_id: str, model: str = MODEL, org: str = "org_a") -> None:
        key = "key_a" if org == "org_a" else "key_b"
        made = Hold(request_id, org, key, 1000, model, "default", None, None, "1500000", "480p")
        assert await self.wallet.reserve(made) is None

    async def create_upstream(self, model: str = MODEL) -> str:
        """A create that reached the upstream (straight, as a relayed one does)."""
        body = {"model": model, "content": [{"type": "text", "text": "a boat --rs 480p"}]}
        async with httpx.AsyncClient(base_url=self.upstream_url) as client:
            answer = await client.post(
                "/api/v3/contents/generations/tasks",
                json=body,
                headers={"Authorization": f"Bearer {UPSTREAM_KEY}"},
            )
        assert answer.status_code == 200, answer.text
        return answer.json()["id"]

    async def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(row) for row in await dbm.fetch_all(self.state.db, sql, *args)]

    async def holds(self) -> dict[str, tuple[str, str | None]]:
        rows = await self.rows("SELECT id, status, task_id FROM reservations")
        return {row["id"]: (row["status"], row["task_id"]) for row in rows}

    async def audit(self, action: str) -> list[dict[str, Any]]:
        return await self.rows("SELECT target, detail FROM audit WHERE action=?", action)


type Body = Callable[[Env], Awaitable[None]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def run(tmp_path: Path) -> Callable[[Body], None]:
    def runner(body: Body, *, reachable: bool = True) -> None:
        async def main() -> None:
            clock = Clock(T0)
            config = SimulatorConfig(api_key=UPSTREAM_KEY, queued_seconds=0, running_seconds=1)
            simulator = AppServer(simulator_app(config, clock=clock), "127.0.0.1", 0)
            await simulator.start()
            state = await ControlState.open(tmp_path / "data")
            url = f"http://127.0.0.1:{simulator.port if reachable else free_port()}"
            env = Env(state, clock, url)
            try:
                for org in ("org_a", "org_b"):
                    await state.db.execute(
                        "INSERT INTO orgs (id, name, email, created_at, updated_at) "
                        "VALUES (?, ?, 'ops@example.com', ?, ?)",
                        (org, org, T0, T0),
                    )
                    await state.db.execute(
                        "INSERT INTO api_keys (id, org_id, name, environment, secret_hash, "
                        "created_at, updated_at) VALUES (?, ?, 'k', 'live', 'h', ?, ?)",
                        (org.replace("org", "key"), org, T0, T0),
                    )
                await env.wallet.grant("org_a", 1_000_000, "top-up", "admin")
                await env.wallet.grant("org_b", 1_000_000, "top-up", "admin")
                await asyncio.wait_for(body(env), timeout=20)
            finally:
                await env.upstream.aclose()
                await state.close()
                await simulator.stop()

        asyncio.run(main())

    return runner


def test_tasks_of_unanswered_creates_are_charged_to_their_holds_and_strangers_reported_once(
    run: Callable[[Body], None],
) -> None:
    async def body(env: Env) -> None:
        await env.sweeper.sweep()  # the first scan: nothing older to look at
        for request_id in ("req-1", "req-2", "req-3", "req-answered"):
            await env.reserve(request_id)
        env.clock.now += 1
        answered = await env.create_upstream()
        await env.wallet.assign("req-answered", answered)  # the edge answered this one
        orphans = [await env.create_upstream(), await env.create_upstream()]
        stranger = await env.create_upstream(OTHER_MODEL)  # made with the key, not by an edge

        env.clock.now = T0 + TIMES.stale_after + 1  # stale, but not yet decided
        assert await env.sweeper.sweep() == 0
        assert {h[0] for h in (await env.holds()).values()} == {"held"}

        env.clock.now = T0 + TIMES.stale_after + TIMES.clock_slack + 2
        assert await env.sweeper.sweep() == 0  # matched, and req-3 not yet releasable
        holds = await env.holds()
        # Made in the same second by holds alike: either pairing bills the same.
        assert {holds["req-1"], holds["req-2"]} == {("held", task_id) for task_id in orphans}
        assert holds["req-3"] == ("held", None)
        assert holds["req-answered"] == ("held", answered)
        tasks = await env.rows("SELECT id, org_id FROM tasks ORDER BY id")
        assert {row["id"]: row["org_id"] for row in tasks} == {
            task_id: "org_a" for task_id in (*orphans, answered)
        }
        charged = await env.audit("hold.orphan_charged")
        assert sorted(row["target"] for row in charged) == ["org_a", "org_a"]
        unbilled = await env.audit("upstream.task_unbilled")
        assert [row["target"] for row in unbilled] == [stranger]
        assert dbm.loads(unbilled[0]["detail"])["reason"] == "unmatched"

        env.clock.now = T0 + TIMES.stale_after + 2 * TIMES.clock_slack + TIMES.create_seconds + 1
        assert await env.sweeper.sweep() == 1  # req-3 made no task: released
        assert (await env.holds())["req-3"][0] == "released"
        await env.sweeper.sweep()
        assert len(await env.audit("upstream.task_unbilled")) == 1  # reported once
        assert len(await env.audit("hold.orphan_charged")) == 2

        # The edge settles them as it settles any task (its reconciler polls unsettled ones).
        assert set(await env.wallet.unsettled_tasks()) == {*orphans, answered}
        assert await env.wallet.settle(orphans[0], "succeeded", 1000) == 1500
        assert await env.wallet.settle(orphans[0], "succeeded", 1000) is None  # once

        shown = await status(env.state)
        assert (shown["charged"], shown["unbilled"]) == (2, 1)
        assert [row["task_id"] for row in shown["newest_unbilled"]] == [stranger]
        assert shown["error"] is None
        assert shown["scanned_until"] == TIMES.decided_before(env.clock.now)

    run(body)


def test_a_late_record_of_a_task_given_to_another_hold_keeps_one_hold_per_task(
    run: Callable[[Body], None],
) -> None:
    async def body(env: Env) -> None:
        await env.sweeper.sweep()
        await env.reserve("req-1")
        await env.reserve("req-2")
        env.clock.now += 1
        first = await env.create_upstream()
        env.clock.now = T0 + TIMES.stale_after + TIMES.clock_slack + 2
        await env.sweeper.sweep()
        assert (await env.holds())["req-1"] == ("held", first)
        # req-2's record arrives from an edge's spool: it made `first` (the scan could not tell).
        await env.wallet.assign("req-2", first)
        holds = await env.holds()
        assert holds["req-1"] == ("held", first)
        assert holds["req-2"] == ("held", None)  # released in its turn, not charged twice

    run(body)


def test_while_the_upstream_cannot_be_listed_stale_holds_stay_for_at_most_give_up_after(
    run: Callable[..., None],
) -> None:
    async def body(env: Env) -> None:
        await env.sweeper.sweep()
        await env.reserve("req-1")
        env.clock.now = T0 + TIMES.stale_after + TIMES.create_seconds + 3 * TIMES.clock_slack
        assert await env.sweeper.sweep() == 0
        assert (await env.holds())["req-1"] == ("held", None)
        shown = await status(env.state)
        assert shown["error"] == "ConnectError"
        env.clock.now = T0 + TIMES.give_up_after + 1
        assert await env.sweeper.sweep() == 1
        assert (await env.holds())["req-1"] == ("released", None)

    run(body, reachable=False)


def test_without_the_upstream_key_stale_holds_are_released_as_before(tmp_path: Path) -> None:
    async def main() -> None:
        state = await ControlState.open(tmp_path / "data")
        clock = Clock(T0)
        wallet = DatabaseWallet(state, clock=clock)
        try:
            await state.db.execute(
                "INSERT INTO orgs (id, name, email, created_at, updated_at) "
                "VALUES ('org_a', 'a', 'ops@example.com', ?, ?)",
                (T0, T0),
            )
            await wallet.grant("org_a", 10_000, "top-up", "admin")
            made = Hold("req-1", "org_a", "key_a", 1000, MODEL, "default")
            assert await wallet.reserve(made) is None
            sweeper = HoldSweeper(wallet, times=TIMES)
            clock.now += TIMES.stale_after - 1
            assert await sweeper.sweep() == 0
            clock.now += 2
            assert await sweeper.sweep() == 1
        finally:
            await state.close()

    asyncio.run(main())
