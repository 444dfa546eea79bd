"""What several control planes on one PostgreSQL database need of the seam: a NOTIFY sent in a
transaction reaches the others once it commits, never before; a job is led by one of them at a
time, and by another once the leader closes or loses its connection; a listener whose connection
is lost listens again."""

from __future__ import annotations

import asyncio

from control.store import db as dbm
from control.store.postgres import PostgresDatabase


def test_a_notice_reaches_another_control_plane_when_its_transaction_commits(
    pg_url: str,
) -> None:
    async def main() -> None:
        sender = await dbm.open_database(pg_url)
        receiver = await dbm.open_database(pg_url)
        heard: asyncio.Queue[str] = asyncio.Queue()
        try:
            await receiver.listen("nextapi_test", heard.put_nowait)
            async with sender.transaction() as tx:
                await tx.notify("nextapi_test", "sent in the transaction")
                # Outside a transaction: at once, so before the one above, held to its commit.
                await sender.notify("nextapi_test", "sent meanwhile")
                assert await asyncio.wait_for(heard.get(), timeout=5) == "sent meanwhile"
            assert await asyncio.wait_for(heard.get(), timeout=5) == "sent in the transaction"
        finally:
            await sender.close()
            await receiver.close()

    asyncio.run(main())


def test_one_control_plane_leads_a_job_until_it_closes(pg_url: str) -> None:
    async def main() -> None:
        first = await dbm.open_database(pg_url)
        second = await dbm.open_database(pg_url)
        assert isinstance(first, PostgresDatabase) and isinstance(second, PostgresDatabase)
        try:
            assert await first.lead("retention")
            assert await first.lead("retention")  # still its own, round after round
            assert not await second.lead("retention")
            assert await second.lead("hold sweep")  # each job led apart
            assert not await first.lead("hold sweep")
            await first.close()
            assert await second.lead("retention")  # taken over once the leader is gone
        finally:
            await second.close()

    asyncio.run(main())


def _terminate(application_query: str) -> str:
    """SQL that ends the other sessions of this database running `application_query` last."""
    return (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid != pg_backend_pid() "
        f"AND query LIKE '{application_query}%'"
    )


def test_a_listener_whose_connection_is_lost_listens_again_and_reads_afresh(pg_url: str) -> None:
    async def main() -> None:
        sender = await dbm.open_database(pg_url)
        receiver = await dbm.open_database(pg_url)
        assert isinstance(receiver, PostgresDatabase)
        heard: asyncio.Queue[str] = asyncio.Queue()
        try:
            await receiver.listen("nextapi_test", heard.put_nowait)
            ended = await sender.fetch_all(_terminate("LISTEN"))
            assert len(ended) == 1  # the listener's own connection, cut by the server
            # Told to read afresh once it listens again (what was sent meanwhile is lost) ...
            assert await asyncio.wait_for(heard.get(), timeout=10) == ""
            # ... and it hears what is sent from then on.
            await sender.notify("nextapi_test", "after the loss")
            assert await asyncio.wait_for(heard.get(), timeout=5) == "after the loss"
        finally:
            await sender.close()
            await receiver.close()

    asyncio.run(main())


def test_a_leader_whose_connection_is_lost_stops_leading_and_another_takes_over(
    pg_url: str,
) -> None:
    async def main() -> None:
        first = await dbm.open_database(pg_url)
        second = await dbm.open_database(pg_url)
        assert isinstance(first, PostgresDatabase)
        try:
            assert await first.lead("retention")
            ended = await second.fetch_all(_terminate("SELECT pg_try_advisory_lock"))
            assert len(ended) == 1  # the server cut the lock holder's connection
            assert not await first.lead("retention")  # knows it lost it: not two leaders
            assert await second.lead("retention")
            assert not await first.lead("retention")  # and does not get it back meanwhile
        finally:
            await first.close()
            await second.close()

    asyncio.run(main())


def test_the_pool_hands_out_no_connection_the_server_cut(pg_url: str) -> None:
    async def main() -> None:
        db = await dbm.open_database(pg_url)
        other = await dbm.open_database(pg_url)
        assert isinstance(db, PostgresDatabase)
        try:
            await db.fetch_one("SELECT 1")  # the pool's connections are open and idle
            ended = await other.fetch_all(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = '' "
                "AND pid != pg_backend_pid() AND query = 'SELECT 1'"
            )
            assert ended  # as a server restart does to them
            for _ in range(4):  # each statement on a live connection, none on a cut one
                assert (await db.fetch_one("SELECT 2"))[0] == 2
        finally:
            await db.close()
            await other.close()

    asyncio.run(main())
