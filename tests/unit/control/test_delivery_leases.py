"""The outbox shared by several control planes: an event is leased to the one that claims it,
sent by it alone, and falls due for any of them when a claimant died with the lease."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from control.jobs.delivery import LEASE_MARGIN
from tests.unit.control.test_delivery import Env, run


def test_two_deliverers_on_one_outbox_send_each_event_once(tmp_path: Path, backend: str) -> None:
    async def scenario(env: Env) -> None:
        webhook_id, _ = await env.hook()
        events = [await env.event(webhook_id, task=f"t{n}") for n in range(24)]
        env.receiver.delay = 0.01  # attempts overlap: both claim while the other sends
        first, second = env.deliverer(concurrency=4), env.deliverer(concurrency=4)
        made = await asyncio.gather(first.run_once(), second.run_once())
        assert sum(made) == len(events) and all(made)  # both took part
        sent = Counter(r.headers["webhook-id"] for r in env.receiver.requests)
        assert sent == Counter(events)  # every one, once
        statuses = await env.rows("SELECT DISTINCT status FROM webhook_events")
        assert statuses == [{"status": "delivered"}]

    run(tmp_path, scenario, backend)


def test_an_event_leased_by_a_control_plane_that_died_is_sent_once_its_lease_runs_out(
    tmp_path: Path, backend: str
) -> None:
    async def scenario(env: Env) -> None:
        webhook_id, _ = await env.hook()
        event_id = await env.event(webhook_id)
        died = env.deliverer(timeout=5)
        assert [claimed for claimed, _ in await died._claim(8)] == [event_id]  # then it died
        survivor = env.deliverer(timeout=5)
        assert await survivor.run_once() == 0  # leased: not sent beside the claimant
        env.clock.advance(5 + LEASE_MARGIN - 1)
        assert await survivor.run_once() == 0
        env.clock.advance(1)
        assert await survivor.run_once() == 1  # the lease ran out: due for anyone
        assert [r.headers["webhook-id"] for r in env.receiver.requests] == [event_id]
        assert (await env.event_row(event_id))["status"] == "delivered"

    run(tmp_path, scenario, backend)


def test_an_attempt_whose_lease_was_taken_over_does_not_send(tmp_path: Path, backend: str) -> None:
    async def scenario(env: Env) -> None:
        webhook_id, _ = await env.hook()
        event_id = await env.event(webhook_id)
        slow = env.deliverer(timeout=5)
        [(_, lease)] = await slow._claim(8)
        env.clock.advance(5 + LEASE_MARGIN)
        assert await env.deliverer(timeout=5).run_once() == 1  # another took it over
        assert await slow._attempt(event_id, lease) == 0  # the first, late: not sent again
        assert len(env.receiver.requests) == 1

    run(tmp_path, scenario, backend)


@pytest.mark.backends("sqlite")  # one process on the file: on PostgreSQL others may send
def test_on_sqlite_the_leases_of_a_process_that_died_are_released_when_the_worker_starts(
    tmp_path: Path, backend: str
) -> None:
    async def scenario(env: Env) -> None:
        webhook_id, _ = await env.hook()
        event_id = await env.event(webhook_id)
        assert [claimed for claimed, _ in await env.deliverer()._claim(8)] == [event_id]
        restarted = env.deliverer()  # the one process on the file, after the first died
        assert await restarted.run_once() == 0  # leased
        await restarted.start()
        try:
            await env.receiver.arrived.wait()  # sent at once, not when the lease runs out
        finally:
            await restarted.stop()
        assert [r.headers["webhook-id"] for r in env.receiver.requests] == [event_id]

    run(tmp_path, scenario, backend)
