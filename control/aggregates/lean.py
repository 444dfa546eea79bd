"""Lean usage cubes: the counters by org, key and model only (no endpoint, status or latency
histogram), for aggregates that do not ask for latency percentiles. The full cube holds about
one row per request (control/aggregates/rollup.py); these hold one per group and slot, so a window
of months over every org reads thousands of rows, not millions.

- `usage_lean`: per 15-minute slot (any time zone's buckets, and the edges of a window);
- `usage_lean_daily`: per UTC day;
- `usage_running`: at each UTC midnight D, every group's totals of all the slots before D, so
  that any span between two UTC midnights is two reads: running(b) - running(a). Every group
  that has a row at a day has one at every later day up to the newest (`horizon`), carried
  forward when the fold first reaches a day. A retention purge keeps the rows from its cutoff
  on, and `running_base` (meta) says from which day the rows count: before it the other cubes
  know nothing either.

The fold groups a batch's records once (by slot and group) and adds the groups to each, in the
rollup fold's transaction (Folder.fold).
"""

from __future__ import annotations

from control.aggregates.counters import COUNTERS, CREATE_ROUTE, raw_counters
from control.store.database import Dialect, Queries, one_value

DAY = 86400
SLOT = 900
LEAN = "usage_lean"
LEAN_DAILY = "usage_lean_daily"
RUNNING = "usage_running"
TABLES = (LEAN, LEAN_DAILY, RUNNING)
DIMS = ("org", "key", "model")
GROUP = "org_id, key_id, model"
BASE_KEY = "running_base"
# The batch's groups, temporary tables of the fold's transaction: named without a schema, as
# both backends look for a temporary table first (SQLite in `temp`, PostgreSQL in pg_temp).
DELTA = "lean_delta"
DELTA_DAILY = "lean_delta_daily"


def _table(name: str, dialect: Dialect) -> str:
    integer, real, text = dialect.integer_type, dialect.real_type, dialect.text_type
    counters = ", ".join(
        f"{c} {real if c == 'latency_sum' else integer} NOT NULL" for c in COUNTERS
    )
    # by time first (every org over a window), and an index for one org's rows
    return (
        f"CREATE TABLE {name} (slot {integer} NOT NULL, org_id {text} NOT NULL, "
        f"key_id {text} NOT NULL, model {text} NOT NULL, {counters}, "
        f"PRIMARY KEY (slot, {GROUP})){dialect.without_rowid};\n"
        f"CREATE INDEX {name}_org ON {name}(org_id, slot);\n"
    )


def _sums() -> str:
    return ", ".join(f"SUM({c}) AS {c}" for c in COUNTERS)


def _add(table: str, select: str) -> str:
    """Upsert `select`'s rows (slot, group, counters; one row a slot and group) into `table`,
    adding to what is there."""
    return (
        f"INSERT INTO {table} (slot, {GROUP}, {', '.join(COUNTERS)}) {select} "
        f"ON CONFLICT (slot, {GROUP}) DO UPDATE SET "
        + ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in COUNTERS)
    )


def _running_sql(source: str, top: str) -> str:
    """Running totals from `source` (slot = a UTC day, group, counters) added to `usage_running`:
    each group's at each UTC midnight after its first day in `source` up to `top`, the sums of
    its `source` days before that midnight."""
    window = "OVER (PARTITION BY g.org_id, g.key_id, g.model ORDER BY b.d)"
    return _add(
        RUNNING,
        "WITH RECURSIVE bounds(d) AS ("
        f"SELECT MIN(slot) + {DAY} FROM {source} UNION ALL "
        f"SELECT d + {DAY} FROM bounds WHERE d < {top}), "
        f"groups AS (SELECT {GROUP}, MIN(slot) AS first FROM {source} GROUP BY {GROUP}) "
        "SELECT b.d, g.org_id, g.key_id, g.model, "
        + ", ".join(f"SUM(COALESCE(x.{c}, 0)) {window}" for c in COUNTERS)
        + f" FROM bounds b JOIN groups g ON g.first < b.d LEFT JOIN {source} x "
        f"ON x.slot = b.d - {DAY} AND x.org_id = g.org_id AND x.key_id = g.key_id "
        "AND x.model = g.model WHERE true",
    )


def migration(dialect: Dialect) -> str:
    """The lean cubes, filled from the full cube (everything folded so far)."""
    return (
        "".join(_table(name, dialect) for name in TABLES)
        + _add(
            LEAN,
            f"SELECT slot, {GROUP}, {_sums()} FROM usage_rollup WHERE true GROUP BY slot, {GROUP}",
        )
        + ";\n"
        + _add(
            LEAN_DAILY,
            f"SELECT slot / {DAY} * {DAY}, {GROUP}, {_sums()} FROM {LEAN} WHERE true "
            f"GROUP BY slot / {DAY}, {GROUP}",
        )
        + ";\n"
        + _running_sql(LEAN_DAILY, f"(SELECT MAX(slot) + {DAY} FROM {LEAN_DAILY})")
        + ";\n"
    )


def _delta_sql(dialect: Dialect) -> str:
    """The batch's records grouped by slot, org, key and model."""
    counters = raw_counters()
    return (
        f"CREATE TEMP TABLE {DELTA} AS SELECT {dialect.slot('u.ts', str(SLOT))} AS slot, "
        "COALESCE(u.org_id, '') AS org_id, COALESCE(u.key_id, '') AS key_id, "
        "COALESCE(u.model, '') AS model, "
        + ", ".join(f"SUM({counters[c]}) AS {c}" for c in COUNTERS)
        + f" FROM {dialect.attached('log')}usage u "
        f"LEFT JOIN {dialect.attached('src')}tasks t ON u.credits > 0 "
        f"AND u.route IS DISTINCT FROM '{CREATE_ROUTE}' AND t.id = u.task_id "
        f"WHERE u.rowid > ? AND u.rowid <= ? GROUP BY 1, 2, 3, 4"
    )


async def _one(db: Queries, sql: str, *args: object) -> int | None:
    value = await one_value(db, sql, *args)
    return None if value is None else int(value)


async def fold(db: Queries, low: int, high: int) -> None:
    """Add the usage rows with rowid in (low, high] to the lean cubes (inside the caller's
    transaction, whose end drops the temporary tables on PostgreSQL should it fail)."""
    for name in (DELTA, DELTA_DAILY):
        await db.execute(f"DROP TABLE IF EXISTS {name}")
    await db.execute(_delta_sql(db.dialect), (low, high))
    await db.execute(
        f"CREATE TEMP TABLE {DELTA_DAILY} AS SELECT slot / {DAY} * {DAY} AS slot, {GROUP}, "
        f"{_sums()} FROM {DELTA} GROUP BY slot / {DAY}, {GROUP}"
    )
    columns = f"slot, {GROUP}, {', '.join(COUNTERS)}"
    await db.execute(_add(LEAN, f"SELECT {columns} FROM {DELTA} WHERE true"))
    await db.execute(_add(LEAN_DAILY, f"SELECT {columns} FROM {DELTA_DAILY} WHERE true"))
    newest = await _one(db, f"SELECT MAX(slot) FROM {DELTA_DAILY}")
    if newest is not None:
        horizon = await _one(db, f"SELECT MAX(slot) FROM {RUNNING}")
        if horizon is not None:  # every group reaches each new day with its totals so far
            for day in range(horizon + DAY, newest + 2 * DAY, DAY):
                await db.execute(
                    f"INSERT INTO {RUNNING} SELECT ?, {GROUP}, {', '.join(COUNTERS)} "
                    f"FROM {RUNNING} WHERE slot = ?",
                    (day, day - DAY),
                )
        top = max(newest + DAY, horizon or 0)
        await db.execute(_running_sql(DELTA_DAILY, str(top)))
    for name in (DELTA, DELTA_DAILY):
        await db.execute(f"DROP TABLE {name}")


async def purge(db: Queries, before: float, *, dry_run: bool) -> dict[str, int]:
    """Delete the slots before `before` (a UTC midnight); the running totals count from
    there on, which `running_base` records."""
    counts = {}
    for table in TABLES:
        where = f"FROM {table} WHERE slot < ?"
        if dry_run:
            counts[table] = await _one(db, f"SELECT COUNT(*) {where}", before) or 0
        else:
            counts[table] = (await db.execute(f"DELETE {where}", (before,))).rowcount
    if not dry_run and counts[RUNNING]:  # every group has a row at each day to the newest
        await db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (BASE_KEY, str(int(before))),
        )
    return counts
