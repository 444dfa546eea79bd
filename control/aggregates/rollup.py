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
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from control.aggregates import lean
from control.aggregates.counters import COUNTERS, CREATE_ROUTE, raw_counters
from control.periodic import Periodic
from control.store import requestlog
from control.store.db import NewerSchema, refuse_newer, schema_version

log = logging.getLogger(__name__)

SLOT = 900  # seconds
# Latency histogram: bucket i holds [LATENCY_FLOOR·r^i, LATENCY_FLOOR·r^(i+1)) ms with
# r = LATENCY_RATIO, bucket 0 also everything below; a percentile is reported as its bucket's
# geometric midpoint, so it is within ±(√r − 1) ≈ 2.5% of the exact value.
LATENCY_FLOOR = 0.1
LATENCY_RATIO = 1.05
LATENCY_BUCKETS = 400  # up to 0.1 ms · 1.05^400 ≈ 30 hours: every answer fits


def latency_bucket_sql(u: str = "u") -> str:
    """The histogram bucket of a row's latency (NULL without one); `latency_bucket` in SQL."""
    return (
        f"(CASE WHEN {u}.latency_ms IS NULL THEN NULL "
        f"WHEN {u}.latency_ms < {LATENCY_FLOOR * LATENCY_RATIO!r} THEN 0 "
        f"ELSE MIN({LATENCY_BUCKETS - 1}, "
        f"CAST(log({u}.latency_ms / {LATENCY_FLOOR!r}) / log({LATENCY_RATIO!r}) AS INTEGER)) END)"
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
FILE = "usage_rollups.sqlite3"


def raw_slot(length: int = SLOT) -> str:
    return f"(CAST(u.ts / {length} AS INTEGER) * {length})"


RAW_SLOT = raw_slot()


def _schema(cube: Cube) -> str:
    columns = [DIMENSIONS[d][0] for d in cube.dims]
    keys = ["slot", *columns, "bucket"]
    if "org" in cube.dims:  # one org's rows together
        keys = ["org_id", "slot", *[c for c in columns if c != "org_id"], "bucket"]
    dim_defs = "".join(f"{c} {'INTEGER' if c == 'status' else 'TEXT'} NOT NULL, " for c in columns)
    counters = ", ".join(
        f"{c} {'REAL' if c == 'latency_sum' else 'INTEGER'} NOT NULL" for c in COUNTERS
    )
    return (
        f"CREATE TABLE {cube.table} (slot INTEGER NOT NULL, {dim_defs}bucket INTEGER NOT NULL, "
        f"{counters}, PRIMARY KEY ({', '.join(keys)})) WITHOUT ROWID;\n"
    )


def _import_daily() -> str:
    """The daily rollups retention kept before (no model, no latency) move into the cubes at
    their day's first slot, their credits reserved or charged by route."""
    create = f"route = '{CREATE_ROUTE}'"
    moved = {
        "slot": "CAST(strftime('%s', day) AS INTEGER)",
        "org_id": "org_id",
        "key_id": "key_id",
        "route": "route",
        "status": "status",
        "model": "''",
        "bucket": "-1",
        "requests": "requests",
        "errors_4xx": "(status BETWEEN 400 AND 499) * requests",
        "errors_5xx": "(status BETWEEN 500 AND 599) * requests",
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
        f"SELECT {', '.join(moved.values())} FROM src.usage_daily;\n"
        + "".join(
            f"INSERT INTO {cube.table} (slot, bucket, {', '.join(COUNTERS)}) "
            f"SELECT slot / {cube.slot} * {cube.slot}, -1, {sums} FROM usage_rollup "
            f"GROUP BY slot / {cube.slot};\n"
            for cube in (ALL_ORGS, ALL_ORGS_DAILY)
        )
    )


# The rollup database's own migrations (it is a file of its own: see Folder); they run with
# the control plane's main database attached as `src` (the first imports its usage_daily).
MIGRATIONS = [
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
    "INSERT INTO meta (key, value) VALUES ('usage_rowid', '0');\n"
    + "".join(_schema(cube) for cube in CUBES)
    + _import_daily(),
    lean.migration(),
]


def _fold_sql(cube: Cube) -> str:
    """Row by row into the cube (an upsert per record is cheaper than sorting the records
    into groups first: most records of a 15-minute slot and group are alone)."""
    dims = [DIMENSIONS[d] for d in cube.dims]
    columns = ", ".join(["slot", *[c for c, _ in dims], "bucket", *COUNTERS])
    counters = raw_counters()
    exprs = ", ".join(
        [
            raw_slot(cube.slot),
            *[e for _, e in dims],
            f"COALESCE({latency_bucket_sql()}, -1)",
            *[counters[c] for c in COUNTERS],
        ]
    )
    conflict = ", ".join(["slot", *[c for c, _ in dims], "bucket"])
    return (
        f"INSERT INTO {cube.table} ({columns}) SELECT {exprs} FROM log.usage u "
        f"LEFT JOIN src.tasks t ON u.credits > 0 AND u.route IS NOT '{CREATE_ROUTE}' "
        "AND t.id = u.task_id WHERE u.rowid > ? AND u.rowid <= ? "
        f"ON CONFLICT ({conflict}) DO UPDATE SET "
        + ", ".join(f"{c} = {c} + excluded.{c}" for c in COUNTERS)
    )


async def watermark(db: aiosqlite.Connection, schema: str = "main") -> int:
    """The last usage rowid folded into the rollups."""
    sql = f"SELECT value FROM {schema}.meta WHERE key='usage_rowid'"
    async with db.execute(sql) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def _watermark_within_log(db: aiosqlite.Connection) -> None:
    """The watermark brought down to the log's newest rowid, should the log be behind it (a
    lost file, an older backup): see the module doc."""
    async with db.execute("SELECT COALESCE(MAX(rowid), 0) FROM log.usage") as cursor:
        row = await cursor.fetchone()
    newest = int(row[0]) if row else 0
    folded = await watermark(db)
    if newest < folded:
        log.warning(
            "usage rollups: the request log ends at row %d, before the %d folded (a lost or "
            "restored log file): folding from there on",
            newest,
            folded,
        )
        await db.execute("UPDATE meta SET value=? WHERE key='usage_rowid'", (str(newest),))


def rollup_path(data_dir: Path) -> Path:
    return data_dir.absolute() / FILE  # attach() makes a file: URI of it: absolute only


async def attach(db: aiosqlite.Connection, path: Path, name: str, *, readonly: bool) -> None:
    uri = path.as_uri() + ("?mode=ro" if readonly else "")
    await db.execute(f"ATTACH DATABASE ? AS {name}", (uri,))


class Folder:
    """Folds new usage rows into the rollups, every `interval` seconds and on demand.

    The rollups live in a database file of their own, written through a connection of their
    own: the fold reads the request log (attached as `log`) and the tasks (the main file,
    attached as `src`) as a WAL reader and writes under the rollup file's lock, so it never
    holds either writer, and it runs on its own thread, beside the ingest rather than in its
    way."""

    def __init__(self, data_dir: Path, *, batch: int = 100_000) -> None:
        # Absolute: the request log is attached by a file: URI (settings are resolved at start;
        # this keeps any other caller with a relative data dir from failing every fold).
        self.data_dir = data_dir.absolute()
        self.batch = batch
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._rounds = Periodic("usage rollup", self.fold)

    async def open(self) -> aiosqlite.Connection:
        if self._db is None:
            path = rollup_path(self.data_dir)
            db = await aiosqlite.connect(path, isolation_level=None)
            try:
                try:  # before the pragmas: rollups this release must not touch stay as they were
                    refuse_newer(await schema_version(db), len(MIGRATIONS))
                except NewerSchema as refused:
                    raise NewerSchema(f"{path}: {refused}") from None
                await db.execute("PRAGMA journal_mode=WAL")
                await db.execute("PRAGMA synchronous=FULL")
                await db.execute("PRAGMA busy_timeout=5000")
                await db.execute("PRAGMA cache_size=-65536")
                main = self.data_dir / "nextapi.sqlite3"
                await attach(db, main, "src", readonly=True)
                await attach(db, requestlog.log_path(self.data_dir), "log", readonly=True)
                async with db.execute("PRAGMA user_version") as cursor:
                    row = await cursor.fetchone()
                version = row[0] if row else 0
                for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                    await db.executescript(
                        f"BEGIN;\n{script}\nPRAGMA user_version={number};\nCOMMIT;"
                    )
                await _watermark_within_log(db)
            except BaseException:
                await db.close()
                raise
            self._db = db
        return self._db

    async def watermark(self) -> int:
        return await watermark(await self.open())

    async def purge(self, before: float, *, dry_run: bool = False) -> dict[str, int]:
        """Delete the slots before `before` (billing records: after their own period), from the
        UTC midnight at or before it: whole days, so that the daily cubes and the running totals
        stay in step with the 15-minute ones."""
        before = before // 86400 * 86400
        db = await self.open()
        counts = {}
        async with self._lock:
            for cube in CUBES:
                where = f"FROM {cube.table} WHERE slot < ?"
                if dry_run:
                    async with db.execute(f"SELECT COUNT(*) {where}", (before,)) as cursor:
                        row = await cursor.fetchone()
                    counts[cube.table] = row[0] if row else 0
                else:
                    cursor = await db.execute(f"DELETE {where}", (before,))
                    counts[cube.table] = cursor.rowcount
            counts |= await lean.purge(db, before, dry_run=dry_run)
        return counts

    async def fold(self) -> None:
        """Fold everything inserted so far, `batch` rows a transaction."""
        async with self._lock:
            db = await self.open()
            statements = [_fold_sql(cube) for cube in CUBES]
            while True:
                await db.execute("BEGIN IMMEDIATE")
                try:
                    low = await watermark(db)
                    async with db.execute(
                        "SELECT MAX(rowid) FROM (SELECT rowid FROM log.usage WHERE rowid > ? "
                        "ORDER BY rowid LIMIT ?)",
                        (low, self.batch),
                    ) as cursor:
                        row = await cursor.fetchone()
                    high = row[0] if row and row[0] is not None else low
                    for sql in statements if high > low else ():
                        await db.execute(sql, (low, high))
                    if high > low:
                        await lean.fold(db, low, high)
                    await db.execute(
                        "UPDATE meta SET value=? WHERE key='usage_rowid'", (str(high),)
                    )
                except BaseException:
                    await db.execute("ROLLBACK")
                    raise
                await db.execute("COMMIT")
                if high - low < self.batch:
                    return

    def start(self, interval: float = 60.0) -> None:
        self._rounds.start(interval, at_once=False)

    async def stop(self) -> None:
        await self._rounds.stop()

    async def close(self) -> None:
        await self.stop()
        if self._db is not None:
            await self._db.close()
            self._db = None
