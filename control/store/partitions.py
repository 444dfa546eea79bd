"""The request log's day partitions on PostgreSQL (migration 0022): `usage` is partitioned by
the UTC day of `ts`, one table a day named usage_YYYYMMDD, and usage_default for a time that
falls in no day made. Ingest makes the days a batch needs (and each one's next, so that the day
after is made before its first record) before it inserts; retention drops a day whole once it is
past the log's period and folded into the rollups, where deleting it would go row by row.

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
TABLE = "usage"
DEFAULT = "usage_default"
PREFIX = "usage_"
# The days a name of eight digits can say (1970-01-01 to 9999-12-31); a time outside them
# (a clock far off) is kept in the default partition.
FIRST_DAY, LAST_DAY = 0, 253402300800 // DAY - 1
# The transaction lock making and dropping partitions take, so that two control planes never
# make one day at once (the second would fail on the catalog's unique names): the project's key
# space ("nxtp" in ASCII), apart from the job and migration locks.
PARTITION_LOCK = 0x6E787470
# How many days before today this process remembers as made: retention drops only days long
# past, so a day remembered is one that still exists (and a record for a day dropped meanwhile
# goes to the default partition, never nowhere).
REMEMBERED_DAYS = 2
# How long making or dropping a day waits for its locks: both take the log's table lock, which a
# long read of the log (an export) holds up, and every insert would queue behind the wait. Given
# up, the records of a day not made go to the default partition (moved when the day is made, at
# a later batch), and a day not dropped is deleted by rows.
LOCK_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class Day:
    number: int  # days since 1970-01-01 (UTC)

    @property
    def name(self) -> str:
        return PREFIX + time.strftime("%Y%m%d", time.gmtime(self.number * DAY))

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


class DayPartitions:
    """The request log's partitions on one PostgreSQL database, as this process makes them."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], float] = time.time,
        lock_timeout: float = LOCK_TIMEOUT,
    ) -> None:
        self.db = db
        self._made: set[int] = set()  # days this process knows are made
        self._clock = clock
        self.lock_timeout = lock_timeout

    async def ensure(self, times: Iterable[float]) -> None:
        """Every day these times fall in made, and the day after each: the first batch of a day
        makes the next, so that midnight's records find theirs made and no insert waits on
        making one. Made by one transaction at a time across the control planes."""
        wanted: set[int] = set()
        for ts in times:
            day = day_of(ts) if isinstance(ts, int | float) else None
            if day is not None:
                wanted.update(n for n in (day.number, day.number + 1) if n <= LAST_DAY)
        missing = sorted(wanted - self._made)
        if not missing:
            return
        try:
            async with self.db.transaction() as tx:
                await self._lock(tx)
                made = await made_days(tx)
                for number in missing:
                    if number not in made:
                        await _make(tx, Day(number))
        except psycopg.errors.LockNotAvailable:
            log.warning(
                "request log: the days %s not made (the log's lock was held for %.1f s): "
                "their records go to %s until a later batch makes them",
                ", ".join(Day(n).name for n in missing),
                self.lock_timeout,
                DEFAULT,
            )
            return
        today = int(self._clock() // DAY)
        self._made = {n for n in self._made | set(missing) if n >= today - REMEMBERED_DAYS}

    async def drop_folded(self, before: float, folded: int) -> int:
        """Drops each day that ends at or before `before` and whose every row is folded (its
        rowids at most `folded`); returns the rows dropped. A day a transaction of its own.
        The day of the log's newest row stays, as retention keeps that row on either backend
        (control/aggregates/rollup.py: the watermark is checked against it at open)."""
        dropped = 0
        newest = await one_value(self.db, f"SELECT COALESCE(MAX(rowid), 0) FROM {TABLE}")
        for number in sorted(await made_days(self.db)):
            day = Day(number)
            if day.end > before:
                break
            try:
                async with self.db.transaction() as tx:
                    await self._lock(tx)
                    row = await tx.fetch_one(
                        f'SELECT COUNT(*), COALESCE(MAX(rowid), 0) FROM "{day.name}"'
                    )
                    assert row is not None
                    if row[1] > folded or row[1] == newest:  # not all folded yet; the newest
                        continue
                    await tx.execute(f'DROP TABLE "{day.name}"')
            except psycopg.errors.LockNotAvailable:
                log.warning("request log: %s not dropped (its lock was held)", day.name)
                continue  # retention deletes its rows one by one instead
            self._made.discard(number)
            dropped += int(row[0])
            log.info("request log: dropped the partition %s (%d records)", day.name, row[0])
        return dropped

    async def _lock(self, tx: Queries) -> None:
        """This transaction's turn at the partitions, waiting at most `lock_timeout` for it
        and for each lock after it."""
        await tx.execute(f"SET LOCAL lock_timeout = '{round(self.lock_timeout * 1000)}ms'")
        await tx.execute("SELECT pg_advisory_xact_lock(?, 0)", (PARTITION_LOCK,))


async def made_days(db: Queries) -> set[int]:
    """The days that have a partition of the request log."""
    rows = await db.fetch_all(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = ?::regclass",
        TABLE,
    )
    days = set()
    for row in rows:
        name = row[0]
        if name != DEFAULT and name.startswith(PREFIX):
            parsed = time.strptime(name[len(PREFIX) :], "%Y%m%d")
            days.add(calendar.timegm(parsed) // DAY)
    return days


async def _make(tx: Queries, day: Day) -> None:
    """The partition of `day`. Should the default partition hold rows of that day (come after
    the day was dropped, or before it was made by a control plane of an earlier release), they
    are moved into it: PostgreSQL refuses to make a partition whose rows the default holds."""
    bounds = f"FROM ({day.start}) TO ({day.end})"
    strays = await one_value(
        tx, f"SELECT 1 FROM {DEFAULT} WHERE ts >= ? AND ts < ? LIMIT 1", day.start, day.end
    )
    if strays is None:
        await tx.execute(f'CREATE TABLE "{day.name}" PARTITION OF {TABLE} FOR VALUES {bounds}')
        return
    await tx.execute(f'CREATE TABLE "{day.name}" (LIKE {TABLE} INCLUDING DEFAULTS)')
    where = "WHERE ts >= ? AND ts < ?"
    await tx.execute(
        f'INSERT INTO "{day.name}" SELECT * FROM {DEFAULT} {where}', (day.start, day.end)
    )
    await tx.execute(f"DELETE FROM {DEFAULT} {where}", (day.start, day.end))
    await tx.execute(f'ALTER TABLE {TABLE} ATTACH PARTITION "{day.name}" FOR VALUES {bounds}')
