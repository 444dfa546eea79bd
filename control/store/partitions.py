"""The request log's day partitions on PostgreSQL (migration 0022): `usage` and
`security_events` are each partitioned by the UTC day of `ts`, one table a day named
usage_YYYYMMDD (security_events_YYYYMMDD), and usage_default (security_events_default) for a
time that falls in no day made. Ingest makes the days a batch needs (and each one's next, so
that the day after is made before its first record) before it inserts; retention drops a day
whole once it is past its period (for usage records, once folded into the rollups too), where
deleting it would go row by row.

On SQLite there is nothing of this: the request log is a file of its own
(control/store/requestlog.py), purged by rows."""

from __future__ import annotations

import calendar
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psycopg

from control.store.database import Database, Queries, one_value

log = logging.getLogger(__name__)

DAY = 86400
# The days a name of eight digits can say (1970-01-01 to 9999-12-31); a time outside them
# (a clock far off) is kept in the default partition.
FIRST_DAY, LAST_DAY = 0, 253402300800 // DAY - 1
# The transaction lock making and dropping partitions take, so that two control planes never
# make one day at once (the second would fail on the catalog's unique names): the project's key
# space ("nxtp" in ASCII), apart from the job and migration locks.
PARTITION_LOCK = 0x6E787470
# How many days before today this process remembers as made (older ones are asked of the
# database each batch): retention drops only days past their period, 90 days by default, and
# should it drop one remembered here, that day's late records go to the default partition,
# never nowhere.
REMEMBERED_DAYS = 2
# How long making or dropping a day waits for its locks: both take the table's lock, which a
# long read of the log (an export) holds up, and every insert would queue behind the wait. Given
# up, the records of a day not made go to the default partition (moved when the day is made, at
# a later batch), and a day not dropped is deleted by rows.
LOCK_TIMEOUT = 2.0
# Days made a transaction: making one takes a dozen locks (the table, its indexes, the default
# partition's), held to the commit, and a batch spanning hundreds of days (a spool replayed
# after a long outage) made in one ran out of the server's lock table ("out of shared memory").
DAYS_A_TRANSACTION = 8


@dataclass(frozen=True, slots=True)
class Day:
    number: int  # days since 1970-01-01 (UTC)

    @property
    def digits(self) -> str:
        return time.strftime("%Y%m%d", time.gmtime(self.number * DAY))

    @property
    def start(self) -> int:
        return self.number * DAY

    @property
    def end(self) -> int:
        return (self.number + 1) * DAY


def day_of(ts: float) -> Day | None:
    """The day `ts` falls in, or None when it has no partition of its own."""
    if not FIRST_DAY * DAY <= ts < (LAST_DAY + 1) * DAY:  # NaN and infinities too
        return None
    return Day(int(ts // DAY))


def partition(table: str, day: Day) -> str:
    """The name of `table`'s partition of `day`."""
    return f"{table}_{day.digits}"


def default_partition(table: str) -> str:
    return f"{table}_default"


class DayPartitions:
    """One table's partitions on one PostgreSQL database, as this process makes them."""

    def __init__(
        self,
        db: Database,
        table: str = "usage",
        *,
        clock: Callable[[], float] = time.time,
        lock_timeout: float = LOCK_TIMEOUT,
    ) -> None:
        self.db = db
        self.table = table
        self.default = default_partition(table)
        self._made: set[int] = set()  # days this process knows are made
        self._clock = clock
        self.lock_timeout = lock_timeout

    def name(self, day: Day) -> str:
        return partition(self.table, day)

    async def ensure(self, times: Iterable[float]) -> None:
        """Every day these times fall in made, and the day after each: the first batch of a day
        makes the next, so that midnight's records find theirs made and no insert waits on
        making one. Made by one transaction at a time across the control planes, a few days
        each (DAYS_A_TRANSACTION)."""
        wanted: set[int] = set()
        for ts in times:
            day = day_of(ts) if isinstance(ts, int | float) else None
            if day is not None:
                wanted.update(n for n in (day.number, day.number + 1) if n <= LAST_DAY)
        missing = sorted(wanted - self._made)
        for start in range(0, len(missing), DAYS_A_TRANSACTION):
            some = missing[start : start + DAYS_A_TRANSACTION]
            try:
                async with self.db.transaction() as tx:
                    await self._lock(tx)
                    made = await made_days(tx, self.table)
                    for number in some:
                        if number not in made:
                            await self._make(tx, Day(number))
            except psycopg.errors.LockNotAvailable:
                log.warning(
                    "request log: the days %s not made (the lock was held for %.1f s): their "
                    "records go to %s until a later batch makes them",
                    ", ".join(self.name(Day(n)) for n in missing[start:]),
                    self.lock_timeout,
                    self.default,
                )
                return
            today = int(self._clock() // DAY)
            self._made = {n for n in self._made | set(some) if n >= today - REMEMBERED_DAYS}

    async def drop_before(self, before: float, *, folded: int | None = None) -> int:
        """Drops each day that ends at or before `before`; returns the rows dropped. A day a
        transaction of its own. With `folded` (the usage rollups' watermark), only a day whose
        every row is folded (its rowids at most `folded`), and never the day of the table's
        newest row, which retention keeps on either backend (control/aggregates/rollup.py: the
        watermark is checked against it at open)."""
        dropped = 0
        newest = None
        if folded is not None:
            newest = await one_value(self.db, f"SELECT COALESCE(MAX(rowid), 0) FROM {self.table}")
        for number in sorted(await made_days(self.db, self.table)):
            day = Day(number)
            name = self.name(day)
            if day.end > before:
                break
            try:
                async with self.db.transaction() as tx:
                    await self._lock(tx)
                    row = await tx.fetch_one(
                        f'SELECT COUNT(*), COALESCE(MAX(rowid), 0) FROM "{name}"'
                    )
                    assert row is not None
                    if folded is not None and (row[1] > folded or row[1] == newest):
                        continue  # not all folded yet; or the newest row's
                    await tx.execute(f'DROP TABLE "{name}"')
            except psycopg.errors.LockNotAvailable:
                log.warning("request log: %s not dropped (its lock was held)", name)
                continue  # retention deletes its rows one by one instead
            self._made.discard(number)
            dropped += int(row[0])
            log.info("request log: dropped the partition %s (%d rows)", name, row[0])
        return dropped

    async def _lock(self, tx: Queries) -> None:
        """This transaction's turn at the partitions, waiting at most `lock_timeout` for it
        and for each lock after it."""
        await tx.execute(f"SET LOCAL lock_timeout = '{round(self.lock_timeout * 1000)}ms'")
        await tx.execute("SELECT pg_advisory_xact_lock(?, 0)", (PARTITION_LOCK,))

    async def _make(self, tx: Queries, day: Day) -> None:
        """The partition of `day`. Should the default partition hold rows of that day (come
        after the day was dropped, or while a lock kept it from being made), they are moved
        into it: PostgreSQL refuses to make a partition whose rows the default holds."""
        name, table, default = self.name(day), self.table, self.default
        bounds = f"FROM ({day.start}) TO ({day.end})"
        where = "WHERE ts >= ? AND ts < ?"
        strays = await one_value(tx, f"SELECT 1 FROM {default} {where} LIMIT 1", day.start, day.end)
        if strays is None:
            await tx.execute(f'CREATE TABLE "{name}" PARTITION OF {table} FOR VALUES {bounds}')
            return
        await tx.execute(f'CREATE TABLE "{name}" (LIKE {table} INCLUDING DEFAULTS)')
        await tx.execute(
            f'INSERT INTO "{name}" SELECT * FROM {default} {where}', (day.start, day.end)
        )
        moved = await tx.execute(f"DELETE FROM {default} {where}", (day.start, day.end))
        await tx.execute(f'ALTER TABLE {table} ATTACH PARTITION "{name}" FOR VALUES {bounds}')
        log.info("request log: %s made, with %d rows from %s", name, moved.rowcount, default)


async def made_days(db: Queries, table: str = "usage") -> set[int]:
    """The days that have a partition of `table`."""
    rows = await db.fetch_all(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = ?::regclass",
        table,
    )
    prefix, days = f"{table}_", set()
    for row in rows:
        digits = row[0].removeprefix(prefix)
        if row[0] != default_partition(table) and digits.isdigit() and len(digits) == 8:
            days.add(calendar.timegm(time.strptime(digits, "%Y%m%d")) // DAY)
    return days


async def status(db: Queries, table: str) -> dict[str, object]:
    """`table`'s days for GET /v1/system: how many, the oldest and newest (YYYY-MM-DD), and the
    rows in its default partition (a time no day was made for: many of them say days are not
    being made)."""
    days = sorted(await made_days(db, table))
    strays = await one_value(db, f"SELECT COUNT(*) FROM {default_partition(table)}")

    def shown(number: int) -> str:
        return time.strftime("%Y-%m-%d", time.gmtime(number * DAY))

    return {
        "table": table,
        "days": len(days),
        "oldest_day": shown(days[0]) if days else None,
        "newest_day": shown(days[-1]) if days else None,
        "default_rows": int(strays or 0),
    }
