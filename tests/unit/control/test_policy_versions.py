"""Policy versions are minted in the database: control planes on one database number their
snapshots alike, and one reads what another published (on PostgreSQL, when NOTIFY tells it)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from control.store import state as state_module
from control.store.state import ControlState
from tests import postgres


def test_two_control_planes_on_one_database_share_the_version_and_read_each_others_change(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        first = await ControlState.open(tmp_path)
        second = await ControlState.open(tmp_path)
        try:
            assert second.snapshot["version"] == first.snapshot["version"] + 1
            async with first.transaction() as tx:
                await tx.execute(
                    "INSERT INTO orgs (id, name, email, created_at, updated_at) "
                    "VALUES ('org_a', 'A', 'a@example.com', 0, 0)"
                )
            await first.publish()
            published = first.snapshot["version"]
            assert published == second.snapshot["version"] + 1  # one sequence, not two
            assert [org["id"] for org in second.snapshot["orgs"]] == []

            second._noticed(str(published - 1))  # known already: nothing is read
            assert not second._refreshes
            second._noticed(str(published))
            await asyncio.gather(*second._refreshes)
            assert second.snapshot["version"] == published
            assert [org["id"] for org in second.snapshot["orgs"]] == ["org_a"]
            assert second.snapshot["epoch"] == first.snapshot["epoch"]

            await second.refresh()  # nothing newer: the snapshot stays as it is
            assert second.snapshot["version"] == published
        finally:
            await second.close()
            await first.close()

    asyncio.run(main())


def test_a_snapshot_older_than_the_one_in_place_is_never_installed(tmp_path: Path) -> None:
    async def main() -> None:
        state = await ControlState.open(tmp_path)
        try:
            newest = state.snapshot
            older = newest | {"version": newest["version"] - 1, "orgs": [{"id": "stale"}]}
            await state._install(older)  # a publish that finished after a newer one
            assert state.snapshot is newest
        finally:
            await state.close()

    asyncio.run(main())


def test_on_postgresql_a_revoke_on_one_control_plane_wakes_the_long_polls_of_another(
    tmp_path: Path,
) -> None:
    async def main(database_url: str) -> None:
        first = await ControlState.open(tmp_path / "a", database_url=database_url)
        second = await ControlState.open(tmp_path / "b", database_url=database_url)
        try:
            async with first.transaction() as tx:
                await tx.execute(
                    "INSERT INTO orgs (id, name, email, created_at, updated_at) "
                    "VALUES ('org_a', 'A', 'a@example.com', 0, 0)"
                )
            await first.publish()
            await second.wait_for_snapshot(second.snapshot["version"], 5)
            known = second.snapshot["version"]
            assert known == first.snapshot["version"]
            polling = asyncio.create_task(second.wait_for_snapshot(known, 30))
            await asyncio.sleep(0)  # the long poll is waiting
            async with first.transaction() as tx:  # a revoke, in effect: the org is suspended
                await tx.execute("UPDATE orgs SET status='suspended' WHERE id='org_a'")
            await first.publish()
            # Woken by the NOTIFY: its own 30 s would have answered the old version, late.
            woke = await asyncio.wait_for(polling, 5)
            assert woke["version"] == first.snapshot["version"] == known + 1
            assert [org["status"] for org in woke["orgs"]] == ["suspended"]
        finally:
            await second.close()
            await first.close()

    with postgres.fresh_database() as database_url:
        asyncio.run(main(database_url))


def test_a_noticed_version_is_read_again_when_the_first_read_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        first = await ControlState.open(tmp_path)
        second = await ControlState.open(tmp_path)
        try:
            await first.publish()
            failures = [ConnectionError("the database is away")]
            real = second.refresh

            async def refresh() -> None:
                if failures:
                    raise failures.pop()
                await real()

            monkeypatch.setattr(second, "refresh", refresh)
            monkeypatch.setattr(state_module, "REFRESH_RETRIES", (0.0,))
            second._noticed(str(first.snapshot["version"]))
            await asyncio.gather(*second._refreshes)
            assert failures == []  # the first read failed ...
            assert second.snapshot["version"] == first.snapshot["version"]  # ... then it read
        finally:
            await second.close()
            await first.close()

    asyncio.run(main())
