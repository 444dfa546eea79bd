"""Usage aggregates: `GET /v1/orgs/{org}/usage` and `GET /v1/usage` (all orgs).

Rows are grouped by a time bucket (hour, day or month, in UTC or shifted to `tz`) and any of
org, key, endpoint, status and model. Every figure agrees with the request log over the same
window: whole 15-minute slots come from the rollups (control/aggregates/rollup.py) plus the rows
not yet folded into them, the partial slots at either end of the window from the request log
itself. All of it is read in one snapshot (on SQLite a read transaction of its own connection,
a WAL snapshot of each file: the log's, the rollups', the main file's for the tasks; on
PostgreSQL a REPEATABLE READ transaction of the one database), so a fold running meanwhile is
seen entirely or not at all: rows at or below the watermark the rollups' snapshot holds are
counted from the rollups, the others from the log, never both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from control.aggregates.buckets import bucket_bounds, offset_segments
from control.aggregates.counters import REQUEST_COUNTERS, TOTAL_COUNTERS
from control.aggregates.reads import (
    MAX_ROWS,
    SORTABLE,
    Group,
    UsageQuery,
    read_raw,
    read_rollup,
    read_running,
)
from control.aggregates.rollup import (
    ALL_ORGS,
    ALL_ORGS_DAILY,
    COUNTERS,
    DIMENSIONS,
    LEAN,
    LEAN_DAILY,
    SLOT,
    Cube,
    percentile,
    watermark,
)
from control.api import csvout
from control.api.access import admin_for
from control.api.orgs import load_org
from control.http import bad_request, page_limit, parse_time, rfc3339
from control.store.database import Queries
from control.store.state import ControlState

TIME_UNITS = ("hour", "day", "month")
GROUPS = (*TIME_UNITS, *DIMENSIONS)
DEFAULT_DAYS = 30
DAY = 86400
# What a row says for each grouped dimension.
DIMENSION_FIELDS = {
    "org": "org_id",
    "key": "key_id",
    "endpoint": "endpoint",
    "status": "status",
    "model": "model",
}
PERCENTILES = (50, 95, 99)
# A row's figures, in the order the JSON and the CSV give them.
ROW_FIELDS = [
    *REQUEST_COUNTERS,
    *(f"latency_p{p}_ms" for p in PERCENTILES),
    "latency_avg_ms",
    *TOTAL_COUNTERS,
]
MAX_ORG_FILTER = 1000  # org ids one `/v1/usage` query may name (a page of orgs, and more)


def parse_query(request: Request, org_id: str | None, *, raw_after: float) -> UsageQuery:
    """The query's window and grouping, from `from`, `to`, `group_by`, `interval` and `tz`
    (and `percentiles=false`: the latency percentiles left out, for the lean cubes' speed).
    A window edge inside a 15-minute slot older than `raw_after` (the request log's retention)
    is widened to the slot: only the rollups know that time."""
    params = request.query_params
    now = time.time()
    end = parse_time(params["to"], "to") if "to" in params else now
    start = parse_time(params["from"], "from") if "from" in params else end - DEFAULT_DAYS * DAY
    if start >= end:
        raise bad_request("`from` must be before `to`.")
    groups: list[str] = []
    for value in params.getlist("group_by"):
        groups += [part.strip() for part in value.split(",") if part.strip()]
    unknown = [g for g in groups if g not in GROUPS]
    if unknown or len(set(groups)) != len(groups):
        raise bad_request(f"`group_by` takes distinct values of: {', '.join(GROUPS)}.")
    units = [g for g in groups if g in TIME_UNITS]
    interval = params.get("interval")
    if interval is not None:
        if interval not in TIME_UNITS:
            raise bad_request(f"`interval` must be one of: {', '.join(TIME_UNITS)}.")
        units = units or [interval]
        if units != [interval]:
            raise bad_request("`interval` and the time unit in `group_by` disagree.")
    if len(units) > 1:
        raise bad_request("`group_by` takes at most one of: hour, day, month.")
    tz_name = params.get("tz", "UTC")
    try:
        zone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise bad_request("`tz` must be an IANA time zone such as `Europe/Paris`.") from None
    if start < raw_after:
        start = _floor(start)
    if end < raw_after:
        end = _ceil(end)
    dims = tuple(g for g in DIMENSIONS if g in groups)  # a fixed order
    unit = units[0] if units else None
    org_ids = _org_filter(request) if org_id is None else ()
    percentiles = params.get("percentiles", "true")
    if percentiles not in ("true", "false"):
        raise bad_request("`percentiles` must be `true` or `false`.")
    sort = params.get("sort")
    if sort is not None and sort.removeprefix("-") not in SORTABLE:
        raise bad_request(f"`sort` must be one of: {', '.join(SORTABLE)} (`-` first: descending).")
    limit = page_limit(request, MAX_ROWS, MAX_ROWS) if "limit" in params else None
    return UsageQuery(
        start,
        end,
        unit,
        dims,
        zone,
        tz_name,
        org_id,
        org_ids,
        percentiles == "true",
        sort,
        limit,
    )


def _org_filter(request: Request) -> tuple[str, ...]:
    """`org`: org ids, comma-separated or repeated (at most MAX_ORG_FILTER, each `org_…`)."""
    named: list[str] = []
    for value in request.query_params.getlist("org"):
        named += [part.strip() for part in value.split(",") if part.strip()]
    if len(named) > MAX_ORG_FILTER or not all(_is_org_id(o) for o in named):
        raise bad_request(f"`org` takes at most {MAX_ORG_FILTER} org ids (`org_…`).")
    if "org" in request.query_params and not named:
        raise bad_request("`org` names no org id.")
    return tuple(dict.fromkeys(named))  # once each, in the order given


def _is_org_id(value: str) -> bool:
    return value.startswith("org_") and len(value) <= 64 and value.replace("_", "").isalnum()


def _floor(ts: float) -> float:
    return float(int(ts // SLOT) * SLOT)


def _ceil(ts: float) -> float:
    return float(-int(-ts // SLOT) * SLOT)


# --- the query ---------------------------------------------------------------------------------


async def aggregate(db: Queries, query: UsageQuery) -> list[dict[str, Any]]:
    """The rows of a usage query, read from `db` (one snapshot of the rollups, the request
    log and the tasks: `Folder.reader`)."""
    lo, hi = _ceil(query.start), _floor(query.end)
    extent = await _data_extent(db, query)
    if extent is None:
        return []
    segments = offset_segments(query.zone, max(query.start, extent[0]), min(query.end, extent[1]))
    groups: dict[tuple[Any, ...], Group] = {}
    if lo < hi:
        for part in _lean_cover(query, segments, lo, hi) if query.lean else ():
            if part.cube is None:
                await read_running(db, query, part.low, part.high, part.time_key, groups)
            else:
                await read_rollup(
                    db, query, part.cube, part.low, part.high, segments, groups, part.sign
                )
        for cube, low, high in () if query.lean else _cover(query, segments, lo, hi):
            await read_rollup(db, query, cube, low, high, segments, groups)
        folded = await watermark(db)
        # `+u.ts`, `+u.org_id` on SQLite: seek by rowid (the few rows not folded yet), never
        # scan the time index or all of an org's rows
        plus = db.dialect.unindexed
        where = f"u.rowid > ? AND {plus}u.ts >= ? AND {plus}u.ts < ?"
        await read_raw(db, query, where, [folded, lo, hi], segments, groups, f"{plus}u.org_id")
        edges = [(query.start, lo), (hi, query.end)]
    else:
        edges = [(query.start, query.end)]
    for low, high in edges:
        if low < high:
            await read_raw(db, query, "u.ts >= ? AND u.ts < ?", [low, high], segments, groups)
    kept = [item for item in groups.items() if item[1].counters[0]]  # none: all taken away
    return [_render(query, key, group) for key, group in _ordered(query, kept)]


def _ordered(
    query: UsageQuery, kept: list[tuple[tuple[Any, ...], Group]]
) -> list[tuple[tuple[Any, ...], Group]]:
    """The groups in the query's order (by `sort`, then by group; or by group), cut at its
    `limit`. Only the groups that can make the cut are ordered by group: ordering thousands of
    groups by key costs more than the rest of a top ten."""
    if query.sort is None:
        return sorted(kept, key=_order)[: query.limit]
    at = COUNTERS.index(query.sort.removeprefix("-"))
    sign = -1 if query.sort.startswith("-") else 1
    if query.limit is not None and query.limit < len(kept):
        last = sorted(sign * group.counters[at] for _, group in kept)[query.limit - 1]
        kept = [item for item in kept if sign * item[1].counters[at] <= last]  # and its ties
    ordered = sorted(kept, key=lambda item: (sign * item[1].counters[at], _order(item)))
    return ordered[: query.limit]


def _cover(
    query: UsageQuery, segments: list[tuple[float, int]], lo: float, hi: float
) -> list[tuple[Cube, float, float]]:
    """Which cube answers which part of [lo, hi): company-wide totals whose buckets all start
    at UTC midnight read whole UTC days from the daily cube, the slots around them from the
    15-minute one."""
    cube = query.cube
    utc_days = query.unit in (None, "day", "month") and all(o == 0 for _, o in segments)
    if cube is not ALL_ORGS or not utc_days:
        return [(cube, lo, hi)]
    first, last = -(-lo // DAY) * DAY, hi // DAY * DAY
    if first >= last:
        return [(cube, lo, hi)]
    parts = [(ALL_ORGS, lo, first), (ALL_ORGS_DAILY, first, last), (ALL_ORGS, last, hi)]
    return [(c, a, b) for c, a, b in parts if a < b]


@dataclass(frozen=True, slots=True)
class _Part:
    cube: Cube | None  # None: the running totals
    low: int
    high: int
    time_key: str | None = None  # the running totals' bucket (month), as SQL would group it
    sign: int = 1  # -1: taken away


def _lean_cover(
    query: UsageQuery, segments: list[tuple[float, int]], lo: float, hi: float
) -> list[_Part]:
    """Which lean cube answers which part of [lo, hi): whole UTC days from the running totals
    (no time bucket, or months of UTC) or the daily cube (days of UTC); the slots around them,
    and any other bucket (hours, or another zone's days), from the 15-minute cube."""
    utc = all(o == 0 for _, o in segments)
    first, last = int(-(-lo // DAY) * DAY), int(hi // DAY * DAY)
    if not (query.unit is None or (query.unit in ("day", "month") and utc)) or first > last:
        return [_Part(LEAN, int(lo), int(hi))]
    # An edge longer than half a day is its whole day less the slots outside the window.
    start, end = first, last
    if first - lo > DAY / 2:
        start = first - DAY
        edges = [_Part(LEAN, start, int(lo), sign=-1)]
    else:
        edges = [_Part(LEAN, int(lo), first)]
    if hi - last > DAY / 2:
        end = last + DAY
        edges.append(_Part(LEAN, int(hi), end, sign=-1))
    else:
        edges.append(_Part(LEAN, last, int(hi)))
    if query.unit == "day":
        middle = [_Part(LEAN_DAILY, start, end)]
    elif query.unit is None:
        middle = [_Part(None, start, end)]
    else:
        middle = [_Part(None, a, b, key) for a, b, key in _utc_months(start, end)]
    return [part for part in [*middle, *edges] if part.low < part.high]


def _utc_months(first: int, last: int) -> list[tuple[int, int, str]]:
    """[first, last) cut at the starts of UTC months: (start, end, 'YYYY-MM') each."""
    pieces = []
    start = first
    while start < last:
        day = datetime.fromtimestamp(start, UTC)
        following = datetime(day.year + day.month // 12, day.month % 12 + 1, 1, tzinfo=UTC)
        end = min(last, int(following.timestamp()))
        pieces.append((start, end, day.strftime("%Y-%m")))
        start = end
    return pieces


def _order(item: tuple[tuple[Any, ...], Group]) -> tuple[Any, ...]:
    return tuple((v is None or v == "", "" if v is None else v) for v in item[0])  # None last


async def _data_extent(db: Queries, query: UsageQuery) -> tuple[float, float] | None:
    """The span of time the stored data covers within the window (bounds the time-zone
    scan: a window from 1970 to 9999 costs no more than the data in it)."""
    lows, highs = [], []
    sources = [
        ("slot", ALL_ORGS.table, (_floor(query.start), query.end), SLOT),
        ("ts", f"{db.dialect.attached('log')}usage", (query.start, query.end), 1),
    ]
    for column, table, args, width in sources:  # each an index seek, not a scan
        for order, found in (("", lows), (" DESC", highs)):
            sql = (
                f"SELECT {column} FROM {table} WHERE {column} >= ? AND {column} < ? "
                f"ORDER BY {column}{order} LIMIT 1"
            )
            row = await db.fetch_one(sql, *args)
            if row is not None:
                found.append(float(row[0]) + (width if order else 0))
    if not lows:
        return None
    return max(query.start, min(lows)), min(query.end, max(highs))


def _render(query: UsageQuery, key: tuple[Any, ...], group: Group) -> dict[str, Any]:
    row: dict[str, Any] = {}
    width = 0 if query.unit is None else 1
    if query.unit is not None:
        start, end = bucket_bounds(query.unit, key[:width], query.zone)
        row["start"], row["end"] = rfc3339(start), rfc3339(end)
    for dim, value in zip(query.dims, key[width:], strict=True):
        row[DIMENSION_FIELDS[dim]] = None if value == "" else value
    counters = dict(zip(COUNTERS, group.counters, strict=True))
    latency = {
        f"latency_p{p}_ms": percentile(group.latency, p) if query.percentiles else None
        for p in PERCENTILES
    }
    latency["latency_avg_ms"] = (
        round(counters["latency_sum"] / counters["latency_count"], 3)
        if counters["latency_count"]
        else None
    )
    for name in ROW_FIELDS:  # every other figure is a counter, whole
        row[name] = latency[name] if name in latency else int(counters[name])
    return row


# --- the handlers ------------------------------------------------------------------------------


async def run_query(request: Request, org_id: str | None) -> tuple[UsageQuery, list[dict]]:
    state: ControlState = request.app.state.control
    raw_days = request.app.state.retention.periods.api_logs_days
    query = parse_query(request, org_id, raw_after=time.time() - raw_days * DAY)
    async with state.rollups.reader() as reader:
        return query, await aggregate(reader, query)


def envelope(query: UsageQuery, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "from": rfc3339(query.start),
        "to": rfc3339(query.end),
        "group_by": [*([query.unit] if query.unit else []), *query.dims],
        "tz": query.tz_name,
        "items": rows,
        "next_cursor": None,
    }


def _answer(request: Request, query: UsageQuery, rows: list[dict[str, Any]]) -> Response:
    if csvout.wants_csv(request):
        columns = [*(["start", "end"] if query.unit else [])]
        columns += [DIMENSION_FIELDS[d] for d in query.dims] + ROW_FIELDS
        return csvout.response(columns, csvout.listed(rows), "usage")
    return JSONResponse(envelope(query, rows))


async def org_usage(request: Request) -> Response:
    """The org's usage aggregated over `from`..`to`, grouped by `group_by`."""
    state: ControlState = request.app.state.control
    await admin_for(request)
    org_id = request.path_params["org"]
    csvout.wants_csv(request)  # a bad `format` is refused before any work
    await load_org(state, org_id)
    query, rows = await run_query(request, org_id)
    return _answer(request, query, rows)


async def all_usage(request: Request) -> Response:
    """Usage of every org aggregated over `from`..`to` (`org` is then a group); `org` names
    the only orgs to count."""
    await admin_for(request)
    csvout.wants_csv(request)
    query, rows = await run_query(request, None)
    return _answer(request, query, rows)
