"""The SQL reads behind the usage aggregates (control/aggregates/api.py), and the query they
answer: a cube of the rollups or the request log itself, grouped by the query's time bucket
and dimensions, summed into `groups` (one `Group` of counters and latency histogram per key)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from control.aggregates import lean
from control.aggregates.buckets import time_key_sql
from control.aggregates.rollup import (
    ALL_ORGS,
    COUNTERS,
    DIMENSIONS,
    FULL,
    LEAN,
    Cube,
    latency_bucket_sql,
    raw_counters,
    raw_slot,
)
from control.store.database import Queries, one_value

# What `sort` takes: the counters a row shows as they are (the top orgs by credits, say).
SORTABLE = tuple(c for c in COUNTERS if c not in ("latency_count", "latency_sum"))
MAX_ROWS = 10_000  # `limit`'s largest value


@dataclass(frozen=True, slots=True)
class UsageQuery:
    start: float  # inclusive, seconds
    end: float  # exclusive
    unit: str | None  # hour, day, month or None
    dims: tuple[str, ...]
    zone: ZoneInfo
    tz_name: str
    org_id: str | None  # None: every org
    org_ids: tuple[str, ...] = ()  # `/v1/usage?org=…`: only these orgs (empty: every org)
    percentiles: bool = True  # false: the latency percentiles are not computed (null)
    sort: str | None = None  # a counter, `-` first for the most first (None: by group)
    limit: int | None = None  # at most this many rows, the first in order (None: all)

    @property
    def lean(self) -> bool:
        """Whether the lean cubes can answer: no percentiles, no grouping beyond their own."""
        return not self.percentiles and set(self.dims) <= set(LEAN.dims)

    @property
    def cube(self) -> Cube:
        return FULL if self.org_id is not None or self.org_ids or self.dims else ALL_ORGS

    def org_clause(self, column: str) -> tuple[str, list[Any]]:
        """The SQL condition (and its arguments) restricting `column` to the query's orgs."""
        if self.org_id is not None:
            return f"{column} = ? AND ", [self.org_id]
        if self.org_ids:
            marks = ", ".join("?" for _ in self.org_ids)
            return f"{column} IN ({marks}) AND ", list(self.org_ids)
        return "", []


@dataclass(slots=True)
class Group:
    counters: list[float]
    latency: dict[int, int]


# Every row's first key, so that a read without any other groups nothing when nothing matches:
# an expression, not a literal, which PostgreSQL's GROUP BY refuses.
FIRST_KEY = "CAST('k' AS TEXT)"


def keys_sql(
    db: Queries, query: UsageQuery, slot: str, dim_sql: list[str], segments: list
) -> list[str]:
    return [FIRST_KEY, *time_key_sql(query.unit, slot, segments, db.dialect), *dim_sql]


async def read_rollup(
    db: Queries,
    query: UsageQuery,
    cube: Cube,
    lo: float,
    hi: float,
    segments: list,
    groups: dict[tuple[Any, ...], Group],
    sign: int = 1,
) -> None:
    """`cube`'s slots in [lo, hi), added to `groups` (`sign` -1: taken away)."""
    dim_sql = [DIMENSIONS[d][0] for d in query.dims]
    keys = keys_sql(db, query, "slot", dim_sql, segments)
    where, args = "slot >= ? AND slot < ?", [int(lo), int(hi)]
    orgs, org_args = query.org_clause("org_id")
    where, args = orgs + where, [*org_args, *args]
    sums = ", ".join(f"{sign} * SUM({c})" for c in COUNTERS)
    group_by = ", ".join(keys)
    table = cube.table
    await collect(
        db,
        f"SELECT {group_by}, {sums} FROM {table} WHERE {where} GROUP BY {group_by}",
        args,
        len(keys),
        groups,
    )
    if not query.percentiles or not cube.latency:
        return
    assert sign == 1, "latency histograms are never taken away"
    await collect_latency(
        db,
        f"SELECT {group_by}, bucket, SUM(latency_count) FROM {table} "
        f"WHERE {where} AND bucket >= 0 GROUP BY {group_by}, bucket",
        args,
        len(keys),
        groups,
    )


async def read_raw(
    db: Queries,
    query: UsageQuery,
    where: str,
    args: list[Any],
    segments: list,
    groups: dict[tuple[Any, ...], Group],
    org_column: str = "u.org_id",
) -> None:
    dim_sql = [DIMENSIONS[d][1] for d in query.dims]
    keys = keys_sql(db, query, raw_slot(db.dialect), dim_sql, segments)
    orgs, org_args = query.org_clause(org_column)
    where, args = orgs + where, [*org_args, *args]
    counters = raw_counters()
    sums = ", ".join(f"SUM({counters[c]})" for c in COUNTERS)
    group_by = ", ".join(keys)
    log, src = db.dialect.attached("log"), db.dialect.attached("src")
    await collect(
        db,
        f"SELECT {group_by}, {sums} FROM {log}usage u LEFT JOIN {src}tasks t ON t.id = u.task_id "
        f"WHERE {where} GROUP BY {group_by}",
        args,
        len(keys),
        groups,
    )
    if not query.percentiles:
        return
    await collect_latency(
        db,
        f"SELECT {group_by}, {latency_bucket_sql(db.dialect)} AS b, COUNT(*) FROM {log}usage u "
        f"WHERE {where} AND u.latency_ms IS NOT NULL GROUP BY {group_by}, b",
        args,
        len(keys),
        groups,
    )


async def read_running(
    db: Queries,
    query: UsageQuery,
    start: int,
    end: int,
    time_key: str | None,
    groups: dict[tuple[Any, ...], Group],
) -> None:
    """[start, end) (UTC midnights) from the running totals: those at `end` less those at
    `start`, every group in the bucket `time_key` (None: no time bucket)."""
    base, first, horizon = await _running_span(db)
    if horizon is None:
        return
    end = min(end, horizon)  # nothing was folded from the horizon on
    minus: int | None = start
    if base is not None:  # a purge: the rows count from `base` on, as the other cubes do
        minus = max(start, base)
    elif first is None or start < first:  # before the first row, the totals are nought
        minus = None
    if minus is not None and minus >= end:
        return
    # Each group's row at `end` less its row at `minus` (there is one at `end` for every group
    # with one at `minus`), in key order: no sorting for the org, key and model groups.
    dims = [f"e.{DIMENSIONS[d][0]}" for d in query.dims]
    keys = [FIRST_KEY, *(["CAST(? AS TEXT)"] if time_key is not None else []), *dims]
    orgs, org_args = query.org_clause("e.org_id")
    if minus is None:
        joined, sums = "", [f"SUM(e.{c})" for c in COUNTERS]
    else:
        joined = (
            f"LEFT JOIN {lean.RUNNING} s ON s.slot = ? AND s.org_id = e.org_id "
            "AND s.key_id = e.key_id AND s.model = e.model "
        )
        sums = [f"SUM(e.{c} - COALESCE(s.{c}, 0))" for c in COUNTERS]
    sql = (
        f"SELECT {', '.join(keys)}, {', '.join(sums)} FROM {lean.RUNNING} e {joined}"
        f"WHERE {orgs}e.slot = ? "
        + (f"GROUP BY {', '.join(dims)} " if dims else "")
        + f"HAVING {sums[0]} != 0"  # a group without requests had no records
    )
    args: list[Any] = [*([time_key] if time_key is not None else [])]
    args += [*([minus] if minus is not None else []), *org_args, end]
    await collect(db, sql, args, len(keys), groups)


async def _running_span(db: Queries) -> tuple[int | None, int | None, int | None]:
    """The running totals' base (after a purge), first and last day."""
    base = await one_value(db, f"SELECT value FROM meta WHERE key = '{lean.BASE_KEY}'")
    ends = []
    for end in ("MIN", "MAX"):  # apart: each is then one index seek
        ends.append(await one_value(db, f"SELECT {end}(slot) FROM {lean.RUNNING}"))
    return None if base is None else int(base), ends[0], ends[1]


def group_of(groups: dict[tuple[Any, ...], Group], key: tuple[Any, ...]) -> Group:
    group = groups.get(key)
    if group is None:
        group = groups[key] = Group([0] * len(COUNTERS), {})
    return group


async def collect(db: Queries, sql: str, args: list[Any], width: int, groups: dict) -> None:
    rows = await db.fetch_all(sql, *args)  # one trip to the database, not one a chunk
    for row in rows:
        values = tuple(row)
        key = values[1:width]
        group = groups.get(key)
        if group is None:  # the most common case, by far: the first part that has the group
            groups[key] = Group([b or 0 for b in values[width:]], {})
        else:
            sums = zip(group.counters, values[width:], strict=True)
            group.counters = [a + (b or 0) for a, b in sums]


async def collect_latency(db: Queries, sql: str, args: list[Any], width: int, groups: dict) -> None:
    for row in await db.fetch_all(sql, *args):
        values = tuple(row)
        histogram = group_of(groups, values[1:width]).latency
        histogram[values[width]] = histogram.get(values[width], 0) + values[width + 1]
