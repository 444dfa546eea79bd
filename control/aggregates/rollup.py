"""Usage rollups: the request log folded into 15-minute slots, so that usage aggregates over
months answer from thousands of rows instead of millions, and outlive the raw log (kept 90 days)
for as long as billing records.

A fold takes the usage rows inserted since the last fold (by rowid: rows are only ever
inserted, never changed, so every row is folded exactly once, however late it arrived) and
adds them to the cubes in one transaction with the new watermark:
- `usage_rollup`: per 15-minute slot, org, key, endpoint, status and model;
- `usage_rollup_all`: per 15-minute slot only (all orgs), for company-wide totals;
- `usage_rollup_all_daily`: the same per UTC day, for company-wide totals over months;
and to the lean cubes (control/aggregates/lean.py: by org, key and model only, without latency).
Every row is also split by latency bucket (log-spaced, see `LATENCY_RATIO`), so that
percentiles are read from the sum of the rows, over any span.

15 minutes because every time zone's offset is a multiple of it: a day or month in any zone is
a whole number of slots, so `tz` shifts buckets exactly. The rollups are a database file of
their own (see Folder), so folding never holds the control plane's write lock, nor the request
log's (control/store/requestlog.py: why the two are apart).

Rowids are never handed out twice as long as the newest row is never deleted (SQLite gives a
new row the largest rowid plus one), so retention keeps the newest request record whatever its
age (control/jobs/retention.py). A request log lost or restored from an older backup would
start again below the watermark: at open, the watermark comes down to the log's newest rowid
(every row at or below it was folded), so the rows written from then on are folded, once.

On PostgreSQL (`--database-url`) the rollups are tables of the control plane's database, as
the request log is (no file is opened), made by their own migrations (`migrations`, counted in
`meta` as `rollups_version`, run under the migrations' advisory lock: control/aggregates/
migrate.py). The fold runs where the job's lead is (`Database.lead`), and each of its
transactions locks the watermark's row, so a fold asked for elsewhere (a retention purge's)
waits and goes on from there. Folding exactly once needs one more thing there: an identity
value is taken at insert, but several control planes ingest at once and their rows commit in
another order, so a row with a smaller rowid may commit after the fold has moved past it, and
would never be folded. The fold therefore reads only up to a bound below which every row is
committed (`committed_bound`: MAX(rowid) read under `LOCK TABLE usage IN SHARE MODE`, a short
transaction of its own that waits for the inserts under way and holds new ones off for that
moment). The reads see the rollups, their watermark and the log in one REPEATABLE READ
snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from control.aggregates import lean, migrate
from control.aggregates.counters import COUNTERS, CREATE_ROUTE, raw_counters
from control.periodic import Periodic
from control.store import rollupfile
from control.store.database import SQLITE, Database, Dialect, Queries, one_value
from control.store.postgres import PostgresDatabase
from control.store.sqlite import SqliteDatabase

log = logging.getLogger(__name__)

SLOT = 900  # seconds
# Latency histogram: bucket i holds [LATENCY_FLOOR·r^i, LATENCY_FLOOR·r^(i+1)) ms with
# r = LATENCY_RATIO, bucket 0 also everything below; a percentile is reported as its bucket's
# geometric midpoint, so it is within ±(√r − 1) ≈ 2.5% of the exact value.
LATENCY_FLOOR = 0.1
LATENCY_RATIO = 1.05
LATENCY_BUCKETS = 400  # up to 0.1 ms · 1.05^400 ≈ 30 hours: every answer fits


def latency_bucket_sql(dialect: Dialect, u: str = "u") -> str:
    """The histogram bucket of a row's latency (NULL without one); `latency_bucket` in SQL.
    The constants are doubles on both backends (a PostgreSQL literal is a numeric, whose log
    is not libm's), so both compute it as Python does."""
    floor, ratio = (f"CAST({v!r} AS DOUBLE PRECISION)" for v in (LATENCY_FLOOR, LATENCY_RATIO))
    index = dialect.truncate(f"log({u}.latency_ms / {floor}) / log({ratio})")
    return (
        f"(CASE WHEN {u}.latency_ms IS NULL THEN NULL "
        f"WHEN {u}.latency_ms < {LATENCY_FLOOR * LATENCY_RATIO!r} THEN 0 "
        f"ELSE {dialect.least(str(LATENCY_BUCKETS - 1), index)} END)"
    )


def latency_bucket(latency_ms: float) -> int:
    """`latency_bucket_sql` in Python (the same libm functions, so the same bucket)."""
    if latency_ms < LATENCY_FLOOR * LATENCY_RATIO:
        return 0
    if not math.isfinite(latency_ms):
        return LATENCY_BUCKETS - 1
    index = int(math.log10(latency_ms / LATENCY_FLOOR) / math.log10(LATENCY_RATIO))
    return min(LATENCY_BUCKETS - 1, index)


def bucket_value(index: int) -> float:
    """What a percentile falling in bucket `index` is reported as (ms)."""
    return round(LATENCY_FLOOR * LATENCY_RATIO ** (index + 0.5), 3)


def percentile(histogram: dict[int, int], p: float) -> float | None:
    """Nearest-rank percentile of a histogram {bucket: count}."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(p / 100 * total))
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return bucket_value(index)
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class Cube:
    """A rollup table: its slot length and grouping columns. Each row is one slot, one group
    and one latency bucket (-1: requests without a latency), with the counters."""

    table: str
    slot: int
    dims: tuple[str, ...]
    latency: bool = True  # split by latency bucket (the lean cubes are not)


# dimension -> (rollup column, raw expression over a usage row `u`); NULLs fold to '' / 0
DIMENSIONS = {
    "org": ("org_id", "COALESCE(u.org_id, '')"),
    "key": ("key_id", "COALESCE(u.key_id, '')"),
    "endpoint": ("route", "COALESCE(u.route, '')"),
    "status": ("status", "u.status"),
    "model": ("model", "COALESCE(u.model, '')"),
}
FULL = Cube("usage_rollup", SLOT, ("org", "key", "endpoint", "status", "model"))
ALL_ORGS = Cube("usage_rollup_all", SLOT, ())
ALL_ORGS_DAILY = Cube("usage_rollup_all_daily", 86400, ())  # UTC days
CUBES = (FULL, ALL_ORGS, ALL_ORGS_DAILY)
LEAN = Cube(lean.LEAN, SLOT, lean.DIMS, latency=False)
LEAN_DAILY = Cube(lean.LEAN_DAILY, 86400, lean.DIMS, latency=False)


def raw_slot(dialect: Dialect, length: int = SLOT) -> str:
    return dialect.slot("u.ts", str(length))


def _schema(cube: Cube, dialect: Dialect) -> str:
    integer, real, text = dialect.integer_type, dialect.real_type, dialect.text_type
    columns = [DIMENSIONS[d][0] for d in cube.dims]
    keys = ["slot", *columns, "bucket"]
    if "org" in cube.dims:  # one org's rows together
        keys = ["org_id", "slot", *[c for c in columns if c != "org_id"], "bucket"]
    dim_defs = "".join(f"{c} {integer if c == 'status' else text} NOT NULL, " for c in columns)
    counters = ", ".join(
        f"{c} {real if c == 'latency_sum' else integer} NOT NULL" for c in COUNTERS
    )
    return (
        f"CREATE TABLE {cube.table} (slot {integer} NOT NULL, {dim_defs}bucket {integer} NOT NULL, "
        f"{counters}, PRIMARY KEY ({', '.join(keys)})){dialect.without_rowid};\n"
    )


def _import_daily(dialect: Dialect) -> str:
    """The daily rollups retention kept before (no model, no latency) move into the cubes at
    their day's first slot, their credits reserved or charged by route."""
    create = f"route = '{CREATE_ROUTE}'"
    if dialect.name == "sqlite":
        day_start = "CAST(strftime('%s', day) AS INTEGER)"
    else:
        day_start = "CAST(EXTRACT(EPOCH FROM CAST(day AS date)) AS bigint)"
    moved = {
        "slot": day_start,
        "org_id": "org_id",
        "key_id": "key_id",
        "route": "route",
        "status": "status",
        "model": "''",
        "bucket": "-1",
        "requests": "requests",
        "errors_4xx": "(CASE WHEN status BETWEEN 400 AND 499 THEN requests ELSE 0 END)",
        "errors_5xx": "(CASE WHEN status BETWEEN 500 AND 599 THEN requests ELSE 0 END)",
        "credits_reserved": f"CASE WHEN {create} THEN credits ELSE 0 END",
        "credits_charged": f"CASE WHEN {create} THEN 0 ELSE credits END",
        "tokens": "0",
        "tasks_created": "0",
        "tasks_succeeded": "0",
        "bytes_in": "bytes_in",
        "bytes_out": "bytes_out",
        "latency_count": "0",
        "latency_sum": "0",
    }
    sums = ", ".join(f"SUM({c})" for c in COUNTERS)
    return (
        f"INSERT INTO usage_rollup ({', '.join(moved)}) "
        f"SELECT {', '.join(moved.values())} FROM {dialect.attached('src')}usage_daily;\n"
        + "".join(
            f"INSERT INTO {cube.table} (slot, bucket, {', '.join(COUNTERS)}) "
            f"SELECT slot / {cube.slot} * {cube.slot}, -1, {sums} FROM usage_rollup "
            f"GROUP BY slot / {cube.slot};\n"
            for cube in (ALL_ORGS, ALL_ORGS_DAILY)
        )
    )


def migrations(dialect: Dialect) -> list[str]:
    """The rollups' own migrations (on SQLite a file of their own: see Folder), run with the
    control plane's main database attached as `src` (the first imports its usage_daily). On
    PostgreSQL `meta` is the database's own (its migration 0001)."""
    if dialect.attaches_files:  # a file of their own: a meta table of their own
        meta = "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
        meta += "INSERT INTO meta (key, value) VALUES ('usage_rowid', '0');\n"
    else:
        meta = "INSERT INTO meta (key, value) VALUES ('usage_rowid', '0') ON CONFLICT DO NOTHING;\n"
    first = meta + "".join(_schema(cube, dialect) for cube in CUBES) + _import_daily(dialect)
    return [first, lean.migration(dialect)]


MIGRATIONS = migrations(SQLITE)


def _fold_sql(cube: Cube, dialect: Dialect) -> str:
    """Into the cube: on SQLite row by row (an upsert per record is cheaper than sorting the
    records into groups first: most records of a 15-minute slot and group are alone); on
    PostgreSQL, which updates a row once a statement, grouped first."""
    dims = [DIMENSIONS[d] for d in cube.dims]
    columns = ", ".join(["slot", *[c for c, _ in dims], "bucket", *COUNTERS])
    counters = raw_counters()
    keys = [raw_slot(dialect, cube.slot), *[e for _, e in dims]]
    keys.append(f"COALESCE({latency_bucket_sql(dialect)}, -1)")
    sums = [counters[c] if dialect.upsert_twice else f"SUM({counters[c]})" for c in COUNTERS]
    positions = ", ".join(str(n) for n in range(1, len(keys) + 1))
    group = "" if dialect.upsert_twice else f" GROUP BY {positions}"
    conflict = ", ".join(["slot", *[c for c, _ in dims], "bucket"])
    return (
        f"INSERT INTO {cube.table} ({columns}) SELECT {', '.join([*keys, *sums])} "
        f"FROM {dialect.attached('log')}usage u LEFT JOIN {dialect.attached('src')}tasks t "
        f"ON u.credits > 0 AND u.route IS DISTINCT FROM '{CREATE_ROUTE}' AND t.id = u.task_id "
        f"WHERE u.rowid > ? AND u.rowid <= ?{group} "
        f"ON CONFLICT ({conflict}) DO UPDATE SET "
        + ", ".join(f"{c} = {cube.table}.{c} + excluded.{c}" for c in COUNTERS)
    )


async def watermark(db: Queries, *, lock: bool = False) -> int:
    """The last usage rowid folded into the rollups; with `lock`, its row locked for the rest
    of the transaction (a fold's, or a purge's: one at a time on the database)."""
    sql = "SELECT value FROM meta WHERE key='usage_rowid'"
    value = await one_value(db, sql + (db.dialect.for_update if lock else ""))
    return int(value) if value is not None else 0


async def committed_bound(db: Database) -> int:
    """The newest usage rowid below which every row is committed: what a fold may read up to.

    On SQLite that is the newest row: one writer, so rowids are handed out in commit order.
    On PostgreSQL an identity value is taken at insert and rows commit in another order (the
    ingest of several control planes, each its own transaction), so the newest committed row
    may have one below it still to commit. `LOCK TABLE usage IN SHARE MODE` waits for every
    transaction inserting into usage to end (an insert holds ROW EXCLUSIVE from before it
    takes its value until it commits) and holds new ones off until this short transaction
    ends, a moment: every rowid at or below the MAX it reads is then committed or never will
    be, and every later insert takes a larger one (the sequence caches one value at a time)."""
    if db.dialect.one_process:  # one writer: rowids are handed out in commit order
        return await _newest_rowid(db)
    async with db.transaction() as tx:
        await tx.execute("LOCK TABLE usage IN SHARE MODE")
        return await _newest_rowid(tx)


async def _newest_rowid(db: Queries) -> int:
    """The request log's newest rowid (0: empty)."""
    usage = f"{db.dialect.attached('log')}usage"
    return int(await one_value(db, f"SELECT COALESCE(MAX(rowid), 0) FROM {usage}"))


async def _watermark_within_log(db: Database) -> None:
    """The watermark brought down to the log's newest rowid, should the log be behind it (a
    lost file, an older backup): see the module doc."""
    newest = await _newest_rowid(db)
    async with db.transaction() as tx:
        folded = await watermark(tx, lock=True)
        if newest < folded:
            log.warning(
                "usage rollups: the request log ends at row %d, before the %d folded (a lost or "
                "restored log file): folding from there on",
                newest,
                folded,
            )
            await tx.execute("UPDATE meta SET value=? WHERE key='usage_rowid'", (str(newest),))


class Folder:
    """Folds new usage rows into the rollups, every `interval` seconds and on demand.

    On SQLite the rollups live in a database file of their own, written through a connection
    of their own: the fold reads the request log (attached as `log`) and the tasks (the main
    file, attached as `src`) as a WAL reader and writes under the rollup file's lock, so it
    never holds either writer, and it runs on its own thread, beside the ingest rather than
    in its way. On PostgreSQL they are tables of `database` (the log's too), folded by the
    control plane that leads the job."""

    def __init__(self, data_dir: Path, database: Database, *, batch: int = 100_000) -> None:
        # Absolute: the request log is attached by a file: URI (settings are resolved at start;
        # this keeps any other caller with a relative data dir from failing every fold).
        self.data_dir = data_dir.absolute()
        self.database = database
        self.batch = batch
        self._db: Database | None = None
        self._lock = asyncio.Lock()
        self._rounds = Periodic("usage rollup", self.fold, lead=database.lead)

    async def open(self) -> Database:
        if self._db is None:
            if isinstance(self.database, PostgresDatabase):
                db: Database = self.database
                await migrate.migrate_postgres(self.database, migrations(db.dialect))
            else:
                db = await rollupfile.open_rollups(self.data_dir, MIGRATIONS)
            await _watermark_within_log(db)
            self._db = db
        return self._db

    @contextlib.asynccontextmanager
    async def reader(self) -> AsyncIterator[Queries]:
        """One snapshot of the rollups, the request log and the tasks for a whole read (on
        SQLite a read transaction of a connection of its own on the three files, the rollups'
        the main one, the others attached as the fold has them)."""
        db = await self.open()
        if not isinstance(db, SqliteDatabase):
            async with db.reader() as snapshot:
                yield snapshot
            return
        async with rollupfile.snapshot(self.data_dir) as snapshot:
            yield snapshot

    async def watermark(self) -> int:
        return await watermark(await self.open())

    async def purge(self, before: float, *, dry_run: bool = False) -> dict[str, int]:
        """Delete the slots before `before` (billing records: after their own period), from the
        UTC midnight at or before it: whole days, so that the daily cubes and the running totals
        stay in step with the 15-minute ones."""
        before = before // 86400 * 86400
        db = await self.open()
        counts = {}
        async with self._lock, db.transaction() as tx:
            await watermark(tx, lock=True)  # no fold meanwhile, on any control plane
            for cube in CUBES:
                where = f"FROM {cube.table} WHERE slot < ?"
                if dry_run:
                    found = await one_value(tx, f"SELECT COUNT(*) {where}", before)
                else:
                    found = (await tx.execute(f"DELETE {where}", (before,))).rowcount
                counts[cube.table] = int(found)
            counts |= await lean.purge(tx, before, dry_run=dry_run)
        return counts

    async def fold(self) -> None:
        """Fold everything committed so far, `batch` rows a transaction (each with its
        watermark, whose row it locks: a fold on another control plane waits, then goes on
        from where this one stopped)."""
        async with self._lock:
            db = await self.open()
            statements = [_fold_sql(cube, db.dialect) for cube in CUBES]
            bound = await committed_bound(db)
            usage = f"{db.dialect.attached('log')}usage"
            while True:
                async with db.transaction() as tx:
                    low = await watermark(tx, lock=True)
                    row = await tx.fetch_one(
                        "SELECT MAX(rowid), COUNT(*) FROM (SELECT rowid FROM "
                        f"{usage} WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?) batch",
                        low,
                        bound,
                        self.batch,
                    )
                    high, found = (row[0], row[1]) if row and row[0] is not None else (low, 0)
                    if high > low:
                        for sql in statements:
                            await tx.execute(sql, (low, high))
                        await lean.fold(tx, low, high)
                        await tx.execute(
                            "UPDATE meta SET value=? WHERE key='usage_rowid'", (str(high),)
                        )
                if found < self.batch:
                    return

    def start(self, interval: float = 60.0) -> None:
        self._rounds.start(interval, at_once=False)

    async def stop(self) -> None:
        await self._rounds.stop()

    async def close(self) -> None:
        await self.stop()
        if isinstance(self._db, SqliteDatabase):
            await self._db.close()
        self._db = None
