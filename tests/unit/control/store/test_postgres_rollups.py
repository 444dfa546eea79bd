"""The usage rollups on PostgreSQL: tables of the database (no file opened), and a fold that
reads only rows every one below which is committed, so that a row whose insert took a smaller
rowid but commits after a larger one's is folded once, never passed over."""

from __future__ import annotations

import asyncio
from pathlib import Path

from control.store.database import one_value
from control.store.postgres import PostgresDatabase
from control.store.state import ControlState

INSERT = (
    "INSERT INTO usage (request_id, ts, org_id, method, route, status, latency_ms) "
    "VALUES (%s, 1900000000.0, 'org_pg', 'GET', 'GET /x', 200, 12.5)"
)
REQUESTS = "SELECT COALESCE(SUM(requests), 0) FROM usage_rollup"


async def fold_waiting_for_a_lock(db: PostgresDatabase) -> None:
    """Until the fold's LOCK TABLE waits for the transaction still inserting (a condition
    polled, at most 10 seconds)."""
    sql = (
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE usage%'"
    )
    async with asyncio.timeout(10):
        while True:  # nothing to be told of: pg_stat_activity is read again
            if await one_value(db, sql):
                return
            await asyncio.sleep(0.01)


def test_a_row_that_commits_after_a_newer_one_is_folded_once(tmp_path: Path, pg_url: str) -> None:
    async def main() -> None:
        state = await ControlState.open(tmp_path, database_url=pg_url)
        try:
            assert isinstance(state.db, PostgresDatabase)
            assert state.log is state.db  # the request log is the database's own tables
            async with state.db.connection() as ingest:
                async with ingest.transaction():  # one control plane's ingest, still open
                    await ingest.execute(INSERT, ("req_late",))  # takes the smaller rowid
                    # another's, committed at once with a larger rowid
                    await state.log.execute(INSERT.replace("%s", "?"), ("req_early",))
                    fold = asyncio.create_task(state.rollups.fold())
                    await fold_waiting_for_a_lock(state.db)
                    assert not fold.done()
                # req_late committed: the fold goes on, past every row
            await fold
            rowids = await state.db.fetch_all("SELECT rowid FROM usage ORDER BY rowid")
            assert await state.rollups.watermark() == rowids[-1][0]
            assert await one_value(state.db, REQUESTS) == 2
            await state.rollups.fold()  # again: nothing twice
            assert await one_value(state.db, REQUESTS) == 2
        finally:
            await state.close()

    asyncio.run(main())
    assert not list(tmp_path.glob("*.sqlite3"))  # no SQLite file: the log, the rollups
