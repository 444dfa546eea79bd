"""The request log on PostgreSQL, partitioned by day (migration 0022, control/store/partitions.py):
ingest makes each record's day and the next, and a resent record is still stored once;
retention drops a past day whole once it is folded (a day not folded stays), deleting only what
is left in the day the period ends in and in the default partition; security events the same,
without the fold; a day made after its records
went to the default partition takes them over, as one a long read kept from being made is by a
later batch; two control planes making the same days at once both succeed; and a log of the
release before moves into the partitions with its rowids."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import psycopg
import pytest

from control.api.usage import store_usage
from control.jobs.retention import DAY, Periods, Retention
from control.store import db as dbm
from control.store import migrations
from control.store.database import Queries, one_value
from control.store.partitions import Day, DayPartitions, day_of, made_days, partition
from control.store.postgres import PostgresDatabase
from control.store.state import ControlState
from proxy.core.usage_records import FIELDS

NOW = 1_900_000_000.0  # 2030-03-17 08:26:40 UTC
TODAY = int(NOW // DAY)


def record(request_id: str, ts: float, **fields: Any) -> dict[str, Any]:
    base = {
        "request_id": request_id,
        "ts": ts,
        "org_id": "org_p",
        "key_id": "key_p",
        "method": "GET",
        "route": "GET /api/v3/contents/generations/tasks/{id}",
        "status": 200,
        "latency_ms": 12.5,
        "upstream_latency_ms": 10.0,
        "bytes_in": 10,
        "bytes_out": 20,
        "credits": 0,
        "model": None,
        "task_id": None,
        "limited_by": None,
    }
    return base | fields


async def placed(db: Queries) -> dict[str, str]:
    """Each request id and the partition its row is in."""
    rows = await db.fetch_all("SELECT request_id, tableoid::regclass::text FROM usage")
    return {row[0]: row[1] for row in rows}


def on_state(tmp_path: Path, pg_url: str, body: Any) -> None:
    async def main() -> None:
        state = await ControlState.open(tmp_path, database_url=pg_url)
        try:
            await body(state)
        finally:
            await state.close()

    asyncio.run(main())


def test_ingest_makes_each_day_and_the_next_and_a_resent_batch_is_stored_once(
    tmp_path: Path, pg_url: str
) -> None:
    async def body(state: ControlState) -> None:
        batch = [
            record("r-today", NOW),
            record("r-midnight", TODAY * DAY),  # the first instant of today: today's
            record("r-yesterday", NOW - DAY),
            record("r-later", NOW + 5 * DAY),
        ]
        await store_usage(state, batch)
        await store_usage(state, batch)  # the edge sent it again (a crash before its ack)
        expected_days = {TODAY - 1, TODAY, TODAY + 1, TODAY + 5, TODAY + 6}
        assert await made_days(state.log) == expected_days
        assert await placed(state.log) == {
            "r-today": partition("usage", Day(TODAY)),
            "r-midnight": partition("usage", Day(TODAY)),
            "r-yesterday": partition("usage", Day(TODAY - 1)),
            "r-later": partition("usage", Day(TODAY + 5)),
        }
        assert partition("usage", Day(TODAY)) == "usage_20300317"
        assert await one_value(state.log, "SELECT COUNT(*) FROM usage") == 4
        # Each day's partition has the log's every index (the key and the seven filters').
        indexes = "SELECT COUNT(*) FROM pg_indexes WHERE tablename = ?"
        assert await one_value(state.log, indexes, partition("usage", Day(TODAY))) == 9

    on_state(tmp_path, pg_url, body)


def test_a_time_no_day_can_name_is_kept_in_the_default_partition() -> None:
    assert day_of(-1.0) is None and day_of(float("inf")) is None and day_of(float("nan")) is None
    assert day_of(253402300800.0) is None  # 10000-01-01
    assert day_of(253402300799.5) == Day(253402300800 // 86400 - 1)
    assert day_of(0.0) == Day(0) and partition("usage", Day(0)) == "usage_19700101"


def test_retention_drops_past_folded_days_whole_and_deletes_the_rest(
    tmp_path: Path, pg_url: str
) -> None:
    cutoff = NOW - 90 * DAY  # Periods' 90 days of request logs
    cutoff_day = int(cutoff // DAY)

    async def body(state: ControlState) -> None:
        retention = Retention(state, Periods(), clock=lambda: NOW, batch=10)
        old = [record(f"old-{n}", NOW - 95 * DAY + n) for n in range(30)]
        old += [record(f"older-{n}", NOW - 93 * DAY + n) for n in range(5)]
        edge = [record("before-cutoff", cutoff - 60), record("after-cutoff", cutoff + 60)]
        # A record for a day nobody made (written past ingest): the default partition's.
        await state.log.execute(
            f"INSERT INTO usage ({', '.join(FIELDS)}) VALUES ({', '.join('?' for _ in FIELDS)})",
            tuple(record("stray", NOW - 120 * DAY).values()),
        )
        await store_usage(state, [*old, *edge, record("recent", NOW)])
        assert (await placed(state.log))["stray"] == "usage_default"
        assert (await retention.purge(dry_run=True)).counts["usage"] == 37
        assert len(await made_days(state.log)) == 8  # a dry run drops nothing

        report = await retention.purge()

        assert report.counts["usage"] == 37
        assert await made_days(state.log) == {cutoff_day, cutoff_day + 1, TODAY, TODAY + 1}
        assert sorted(await placed(state.log)) == ["after-cutoff", "recent"]
        # Every record dropped or deleted is in the rollups.
        requests = "SELECT SUM(requests) FROM usage_rollup_all"
        assert await one_value(state.db, requests) == 39
        assert (await retention.purge()).counts["usage"] == 0

    on_state(tmp_path, pg_url, body)


def test_a_day_not_folded_not_past_or_holding_the_newest_row_is_not_dropped(
    tmp_path: Path, pg_url: str
) -> None:
    async def body(state: ControlState) -> None:
        await store_usage(state, [record(f"r-{n}", NOW - 100 * DAY + n) for n in range(3)])
        await store_usage(state, [record("recent", NOW)])  # rowids 1 to 3, then 4
        days = state.log_days["usage"]
        old_day = TODAY - 100
        assert await days.drop_before(NOW, folded=2) == 0  # its row 3 is not folded
        assert old_day in await made_days(state.log)
        assert await days.drop_before((old_day + 1) * DAY - 1, folded=4) == 0  # not past
        assert await days.drop_before((old_day + 1) * DAY, folded=4) == 3
        assert old_day not in await made_days(state.log)
        # Today's day is past this far ahead, and folded, but holds the log's newest row,
        # which retention keeps (the rollups' watermark is checked against it).
        assert await days.drop_before(NOW + 10 * DAY, folded=4) == 0
        assert TODAY in await made_days(state.log)
        assert await one_value(state.log, "SELECT COUNT(*) FROM usage") == 1

    on_state(tmp_path, pg_url, body)


def test_a_day_made_after_its_records_went_to_the_default_takes_them_over(
    tmp_path: Path, pg_url: str
) -> None:
    async def body(state: ControlState) -> None:
        insert = (
            f"INSERT INTO usage ({', '.join(FIELDS)}) VALUES ({', '.join('?' for _ in FIELDS)})"
        )
        for name, ts in (("early", NOW), ("late", NOW + 100), ("next-day", NOW + DAY)):
            await state.log.execute(insert, tuple(record(name, ts).values()))
        rowids = dict(await state.log.fetch_all("SELECT request_id, rowid FROM usage"))
        assert set((await placed(state.log)).values()) == {"usage_default"}

        await store_usage(state, [record("new", NOW + 200)])  # today and tomorrow made

        assert await placed(state.log) == {
            "early": partition("usage", Day(TODAY)),
            "late": partition("usage", Day(TODAY)),
            "new": partition("usage", Day(TODAY)),
            "next-day": partition("usage", Day(TODAY + 1)),
        }
        assert dict(await state.log.fetch_all("SELECT request_id, rowid FROM usage")) == (
            rowids | {"new": rowids["next-day"] + 1}
        )
        # The day made from the default's rows is a partition like another: its key holds.
        await store_usage(state, [record("early", NOW)])
        assert await one_value(state.log, "SELECT COUNT(*) FROM usage") == 4

    on_state(tmp_path, pg_url, body)


def test_a_day_a_long_read_keeps_from_being_made_is_made_by_a_later_batch(
    tmp_path: Path, pg_url: str
) -> None:
    async def body(state: ControlState) -> None:
        assert state.log_days
        state.log_days["usage"].lock_timeout = 0.2
        await store_usage(state, [record("old", NOW - 100 * DAY)])
        old_day = Day(TODAY - 100)
        async with state.db.connection() as export:  # a long read of the log, under way
            async with export.transaction():
                await export.execute("SELECT COUNT(*) FROM usage")
                await store_usage(state, [record("during", NOW)])  # waited 0.2 s, then went on
                expected = {"old": partition("usage", old_day), "during": "usage_default"}
                assert await placed(state.log) == expected
                assert TODAY not in await made_days(state.log)
                # Past and folded, but the read holds it too: left for retention's rows.
                assert await state.log_days["usage"].drop_before(NOW, folded=10) == 0
                assert old_day.number in await made_days(state.log)
        await store_usage(state, [record("after", NOW + 1)])
        assert await placed(state.log) == {
            "old": partition("usage", old_day),
            "during": partition("usage", Day(TODAY)),
            "after": partition("usage", Day(TODAY)),
        }
        assert await state.log_days["usage"].drop_before(NOW, folded=10) == 1

    on_state(tmp_path, pg_url, body)


def event(request_id: str, ts: float) -> dict[str, Any]:
    return {
        "kind": "security",
        "request_id": request_id,
        "ts": ts,
        "client_ip": "203.0.113.9",
        "key_id": None,
        "org_id": None,
        "reason": "unknown_key",
        "status": 401,
        "route": "POST /api/v3/contents/generations/tasks",
    }


def test_security_events_are_partitioned_by_day_and_dropped_after_their_period(
    tmp_path: Path, pg_url: str
) -> None:
    async def body(state: ControlState) -> None:
        retention = Retention(state, Periods(), clock=lambda: NOW, batch=10)
        cutoff = NOW - 90 * DAY  # Periods' 90 days of security events
        batch = [event(f"e-old-{n}", NOW - 95 * DAY + n) for n in range(12)]
        batch += [event("e-before", cutoff - 60), event("e-after", cutoff + 60)]
        batch += [event("e-now", NOW)]
        await store_usage(state, batch)
        await store_usage(state, batch)  # sent again: stored once
        rows = await state.log.fetch_all(
            "SELECT request_id, tableoid::regclass::text FROM security_events"
        )
        where = dict(rows)
        assert len(rows) == 15
        assert where["e-old-0"] == partition("security_events", Day(TODAY - 95))
        assert where["e-now"] == partition("security_events", Day(TODAY))
        assert TODAY + 1 in await made_days(state.log, "security_events")

        report = await retention.purge()

        assert report.counts["security_events"] == 13  # twelve with their day, one by rows
        days = await made_days(state.log, "security_events")
        assert TODAY - 95 not in days and int(cutoff // DAY) in days
        remaining = "SELECT request_id FROM security_events ORDER BY request_id"
        assert [row[0] for row in await state.log.fetch_all(remaining)] == ["e-after", "e-now"]

    on_state(tmp_path, pg_url, body)


def test_a_batch_spanning_hundreds_of_days_makes_every_one(tmp_path: Path, pg_url: str) -> None:
    """A spool replayed after a long outage: one transaction for all its days ran out of the
    server's lock table (out of shared memory, a 500 for every retry of the batch)."""

    async def body(state: ControlState) -> None:
        batch = [record(f"r-{n}", NOW - n * DAY) for n in range(1000)]
        await store_usage(state, batch)
        assert await made_days(state.log) == set(range(TODAY - 999, TODAY + 2))
        assert set((await placed(state.log)).values()) == {
            partition("usage", Day(TODAY - n)) for n in range(1000)
        }

    on_state(tmp_path, pg_url, body)


def test_two_control_planes_making_the_same_days_at_once_both_succeed(pg_url: str) -> None:
    async def main() -> set[int]:
        first, second = await dbm.open_database(pg_url), await dbm.open_database(pg_url)
        try:
            one, other = DayPartitions(first), DayPartitions(second)
            for n in range(10):  # ten fresh days, each made by both at once
                times = [NOW + 2 * n * DAY]
                await asyncio.gather(one.ensure(times), other.ensure(times))
            return await made_days(first)
        finally:
            await first.close()
            await second.close()

    assert asyncio.run(main()) == {TODAY + d for n in range(10) for d in (2 * n, 2 * n + 1)}


def test_a_log_of_the_release_before_moves_into_the_partitions_with_its_rowids(
    pg_url: str,
) -> None:
    before = migrations.load("postgresql")[:21]
    columns = ", ".join(FIELDS)
    values = ", ".join("%s" for _ in FIELDS)
    times = {"a": NOW, "b": NOW + 10, "c": NOW - 3 * DAY, "odd": -5.0, "far": 1e300}

    async def main() -> None:
        old = await dbm.connect_postgres(pg_url, before)
        async with old.connection() as connection:
            for name, ts in times.items():
                await connection.execute(
                    f"INSERT INTO usage ({columns}) VALUES ({values})",
                    tuple(record(name, ts).values()),
                )
            await connection.execute("DELETE FROM usage WHERE request_id = 'b'")  # a gap
            await connection.execute(
                f"INSERT INTO usage ({columns}) VALUES ({values})",
                tuple(record("b", NOW + 10).values()),
            )
        rowids = dict(await old.fetch_all("SELECT request_id, rowid FROM usage"))
        await old.close()

        db = await dbm.open_database(pg_url)
        assert isinstance(db, PostgresDatabase)
        try:
            assert dict(await db.fetch_all("SELECT request_id, rowid FROM usage")) == rowids
            assert await placed(db) == {
                "a": partition("usage", Day(TODAY)),
                "b": partition("usage", Day(TODAY)),
                "c": partition("usage", Day(TODAY - 3)),
                "odd": "usage_default",
                "far": "usage_default",
            }
            # New rows take rowids past the old ones (the rollups' watermark counts in them).
            await DayPartitions(db).ensure([NOW])
            await db.execute(
                f"INSERT INTO usage ({columns}) VALUES ({', '.join('?' for _ in FIELDS)})",
                tuple(record("new", NOW).values()),
            )
            new = await one_value(db, "SELECT rowid FROM usage WHERE request_id = 'new'")
            assert new == max(rowids.values()) + 1
            with pytest.raises(psycopg.errors.UniqueViolation):  # the key (request_id, ts)
                await db.execute(
                    f"INSERT INTO usage ({columns}) VALUES ({', '.join('?' for _ in FIELDS)})",
                    tuple(record("a", NOW).values()),
                )
        finally:
            await db.close()

    asyncio.run(main())
