"""Usage aggregates (`GET /v1/orgs/{org}/usage`, `GET /v1/usage`) against the request log: on
random records, partly folded into the rollups and partly not, every row of every grouping
agrees with a computation straight from the raw records over the same window."""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from control.aggregates import rollup
from control.jobs.retention import DAY, Periods, Retention
from tests.unit.conftest import Control, ControlRunner, assert_error

CREATE = rollup.CREATE_ROUTE
ROUTES = [
    CREATE,
    "GET /api/v3/contents/generations/tasks/{id}",
    "GET /api/v3/contents/generations/tasks",
    "DELETE /api/v3/contents/generations/tasks/{id}",
    None,
]
STATUSES = [200, 200, 200, 200, 400, 401, 404, 429, 500, 502]
MODELS = ["seedance-1-0-pro", "seedance-1-0-lite", None]
ZONES = ["UTC", "Asia/Kolkata", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"]
COLUMNS = (
    "request_id, ts, org_id, key_id, method, route, status, latency_ms, upstream_latency_ms, "
    "bytes_in, bytes_out, credits, model, task_id"
)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def rfc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_records(
    rng: random.Random, orgs: list[str], start: float, span: float, n: int, tag: str = "a"
):
    """Usage rows and the tasks they name (a charged one, once per task, carries tokens)."""
    records, tasks = [], []
    for i in range(n):
        org = rng.choice([*orgs, None])
        route = rng.choice(ROUTES)
        status = rng.choice(STATUSES)
        task_id = None
        credits = 0
        if route == CREATE:
            credits = rng.randrange(0, 5_000_000)
            if status < 300:
                task_id = f"cgt-{tag}-{i}"
        elif route is not None and "{id}" in route:
            task_id = f"cgt-{tag}-{rng.randrange(n)}"
            if status == 200 and rng.random() < 0.3:
                task_id = f"cgt-{tag}-charged-{i}"
                credits = rng.randrange(1, 3_000_000)
                tasks.append((task_id, org or "org_x", rng.randrange(1, 500_000)))
        latency = None if rng.random() < 0.05 else round(rng.lognormvariate(4, 1.5), 3)
        records.append(
            (
                f"req-{i:06d}",
                start + rng.random() * span,
                org,
                None if org is None else f"key_{org}_{rng.randrange(2)}",
                route.split()[0] if route else "GET",
                route,
                status,
                latency,
                None,
                rng.randrange(0, 5000),
                rng.randrange(0, 50000),
                credits,
                rng.choice(MODELS),
                task_id,
            )
        )
    return records, {task_id: (org, tokens) for task_id, org, tokens in tasks}


async def fold(ctl: Control) -> None:
    await ctl.st.rollups.fold()


async def insert(ctl: Control, records: list[tuple], tasks: dict[str, tuple[str, int]]) -> None:
    await ctl.st.log.executemany(
        f"INSERT INTO usage ({COLUMNS}) VALUES ({', '.join('?' * 14)})", records
    )
    await ctl.st.db.executemany(
        "INSERT INTO tasks (id, org_id, key_id, status, tokens, created_at, "
        "updated_at) VALUES (?, ?, 'k', 'succeeded', ?, 0, 0)",
        [(task_id, org, tokens) for task_id, (org, tokens) in tasks.items()],
    )


async def folded_and_late(
    ctl: Control, rng: random.Random, orgs: int, begin: float, span: float, counts: tuple[int, int]
) -> tuple[list[str], list[tuple], dict[str, tuple[str, int]]]:
    """`orgs` new orgs, and random records over [begin, begin + span): `counts[0]` folded into
    the rollups, then `counts[1]` late arrivals over the same time, not folded yet."""
    # In id order, so that which org the seeded draws give which records is the same in
    # every run (ids are random): the groups' order, by org id, then is too.
    org_ids = sorted([(await ctl.create_org(name=f"org {i}"))["id"] for i in range(orgs)])
    first, tasks_a = make_records(rng, org_ids, begin, span, counts[0])
    await insert(ctl, first, tasks_a)
    await fold(ctl)
    second, tasks_b = make_records(rng, org_ids, begin, span, counts[1], "b")
    second = [(f"late-{r[0]}", *r[1:]) for r in second]
    await insert(ctl, second, tasks_b)
    return org_ids, first + second, tasks_a | tasks_b


# --- the oracle: straight from the raw records ---------------------------------------------


def time_bucket(unit: str, ts: float, zone: ZoneInfo) -> tuple[str, str]:
    local = datetime.fromtimestamp(ts, zone)
    if unit == "hour":
        offset = int(local.utcoffset().total_seconds())  # type: ignore[union-attr]
        start = ts - ((int(ts // 1) + offset) % 3600) - (ts % 1)
        return rfc(start), rfc(start + 3600)
    if unit == "day":
        first = datetime(local.year, local.month, local.day, tzinfo=zone)
        following = datetime.combine(first.date() + timedelta(days=1), first.time(), zone)
    else:
        first = datetime(local.year, local.month, 1, tzinfo=zone)
        following = datetime(local.year + local.month // 12, local.month % 12 + 1, 1, tzinfo=zone)
    return rfc(first.timestamp()), rfc(following.timestamp())


def oracle(
    records: list[tuple],
    tasks: dict[str, tuple[str, int]],
    *,
    start: float,
    end: float,
    unit: str | None,
    dims: list[str],
    zone: ZoneInfo,
    org: str | None,
) -> list[dict[str, Any]]:
    groups: dict[tuple, dict[str, Any]] = {}
    latencies: dict[tuple, list[float]] = defaultdict(list)
    for r in records:
        (_, ts, org_id, key_id, _, route, status, latency, _, b_in, b_out, credits, model, task) = r
        if not start <= ts < end or (org is not None and org_id != org):
            continue
        key: tuple = ()
        if unit:
            key += time_bucket(unit, ts, zone)
        values = {"org": org_id, "key": key_id, "endpoint": route, "status": status, "model": model}
        key += tuple(values[d] for d in dims)
        g = groups.setdefault(key, defaultdict(int))
        charged = route != CREATE and credits > 0
        g["requests"] += 1
        g["errors_4xx"] += 400 <= status <= 499
        g["errors_5xx"] += 500 <= status <= 599
        g["credits_reserved"] += credits if route == CREATE else 0
        g["credits_charged"] += 0 if route == CREATE else credits
        g["tokens"] += tasks[task][1] if charged and task in tasks else 0
        g["tasks_created"] += route == CREATE and task is not None and status < 300
        g["tasks_succeeded"] += charged
        g["bytes_in"] += b_in
        g["bytes_out"] += b_out
        if latency is not None:
            latencies[key].append(latency)
    rows = []
    for key in sorted(groups, key=lambda k: tuple((v is None, v or "") for v in k)):
        row: dict[str, Any] = {}
        rest = list(key)
        if unit:
            row["start"], row["end"] = rest.pop(0), rest.pop(0)
        for dim, value in zip(dims, rest, strict=True):
            field = {"org": "org_id", "key": "key_id", "endpoint": "endpoint"}.get(dim, dim)
            row[field] = value
        g = groups[key]
        histogram: dict[int, int] = defaultdict(int)
        for latency in latencies[key]:
            histogram[rollup.latency_bucket(latency)] += 1
        row |= {k: g[k] for k in ("requests", "errors_4xx", "errors_5xx")}
        for p in (50, 95, 99):
            row[f"latency_p{p}_ms"] = rollup.percentile(histogram, p)
        found = latencies[key]
        row["latency_avg_ms"] = round(sum(found) / len(found), 3) if found else None
        for k in ("credits_reserved", "credits_charged", "tokens", "tasks_created"):
            row[k] = g[k]
        for k in ("tasks_succeeded", "bytes_in", "bytes_out"):
            row[k] = g[k]
        rows.append(row)
    return rows


def expected(
    records: list[tuple],
    tasks: dict[str, tuple[str, int]],
    params: dict[str, str],
    org: str | None = None,
) -> list[dict[str, Any]]:
    """The oracle's rows for a query as it was sent: its `from`, `to`, `group_by` and `tz`
    (of one org's usage, or of every org's)."""
    groups = [g for g in params.get("group_by", "").split(",") if g]
    units = [g for g in groups if g in ("hour", "day", "month")]
    return oracle(
        records,
        tasks,
        start=datetime.fromisoformat(params["from"]).timestamp(),
        end=datetime.fromisoformat(params["to"]).timestamp(),
        unit=units[0] if units else None,
        dims=[d for d in ("org", "key", "endpoint", "status", "model") if d in groups],
        zone=ZoneInfo(params.get("tz", "UTC")),
        org=org,
    )


PERCENTILES = ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms")


def without_percentiles(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows as `percentiles=false` answers them."""
    return [row | dict.fromkeys(PERCENTILES) for row in rows]


def same(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert len(got) == len(want), (len(got), len(want))
    for mine, theirs in zip(got, want, strict=True):
        mine, theirs = dict(mine), dict(theirs)
        a, b = mine.pop("latency_avg_ms"), theirs.pop("latency_avg_ms")
        assert (a is None) == (b is None) and (a is None or math.isclose(a, b, abs_tol=0.002))
        assert mine == theirs


def keep_the_request_log(ctl: Control) -> None:
    """The request log kept for as long as the test's records go back, however far the test's
    clock is from today's (no window edge is widened to its slot for being older)."""
    ctl.app.state.retention = Retention(ctl.st, Periods(api_logs_days=100 * 365))  # type: ignore[union-attr]


# Pinned clocks (not today's): the windows are drawn round them, so a run on any date tests
# the same instants; the first has New York's clocks going back inside the hourly windows.
RANDOM_CLOCKS = ["2026-11-21T10:00:00Z", "2026-08-15T23:59:59Z"]


@pytest.mark.parametrize("clock", RANDOM_CLOCKS)
def test_aggregates_agree_with_the_request_log_on_random_data(
    control_plane: ControlRunner, clock: str
) -> None:
    rng = random.Random(20261129)
    now = datetime.fromisoformat(clock).timestamp()

    async def body(ctl: Control) -> None:
        keep_the_request_log(ctl)
        begin = now - 20 * DAY
        orgs, records, tasks = await folded_and_late(ctl, rng, 3, begin, 12 * DAY, (1500, 600))

        groupings = [
            (None, []),
            ("day", []),
            ("month", []),
            ("hour", ["status"]),
            ("day", ["model", "endpoint"]),
            (None, ["key", "status", "model"]),
            ("day", ["org"]),
        ]
        for case in range(24):
            unit, dims = groupings[case % len(groupings)]
            tz = ZONES[case % len(ZONES)]
            start = begin + rng.random() * 4 * DAY  # never on a slot boundary
            end = start + rng.random() * 9 * DAY
            if case % 6 == 0:  # slot-aligned windows too
                start, end = start // 900 * 900, end // 900 * 900
            org = rng.choice([*orgs, None])
            if org is None and "org" not in dims and dims:
                dims = [*dims, "org"] if case % 2 else dims
            group_by = ",".join([*([unit] if unit else []), *dims])
            params = {"from": iso(start), "to": iso(end), "tz": tz, "group_by": group_by}
            path = "/v1/usage" if org is None else f"/v1/orgs/{org}/usage"
            response = await ctl.get(path, params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["tz"] == tz and body["from"] == rfc(start) and body["to"] == rfc(end)
            want = expected(records, tasks, params, org)
            assert want, params  # every case has data to agree on
            same(body["items"], want)

        # Folding the rest changes no answer.
        params = {"from": iso(begin), "to": iso(begin + 13 * DAY), "group_by": "day,org,status"}
        before = (await ctl.get("/v1/usage", params=params)).json()["items"]
        await fold(ctl)
        same((await ctl.get("/v1/usage", params=params)).json()["items"], before)

    control_plane(body)


def test_days_older_than_the_request_log_are_answered_from_the_rollups(
    control_plane: ControlRunner,
) -> None:
    rng = random.Random(7)

    async def body(ctl: Control) -> None:
        org = (await ctl.create_org())["id"]
        now = time.time()
        begin = (now - 100 * DAY) // DAY * DAY  # a UTC midnight
        records, tasks = make_records(rng, [org], begin, 20 * DAY, 800)
        await insert(ctl, records, tasks)
        params = {
            "from": iso(begin),
            "to": iso(begin + 20 * DAY),
            "group_by": "day,status",
            "tz": "Europe/Paris",
        }
        # While the records are still there (with a retention that keeps them):
        path = f"/v1/orgs/{org}/usage"
        live = (await ctl.get(path, params=params)).json()["items"]
        want = oracle(
            records,
            tasks,
            start=begin,
            end=begin + 20 * DAY,
            unit="day",
            dims=["status"],
            zone=ZoneInfo("Europe/Paris"),
            org=org,
        )
        same(live, want)
        recent, recent_tasks = make_records(rng, [org], now - DAY, 3600, 1, "recent")
        recent = [("newest", *recent[0][1:])]
        await insert(ctl, recent, recent_tasks)  # the newest record is never purged
        retention = Retention(ctl.st, Periods(), clock=lambda: now)
        report = await retention.purge()
        assert report.counts["usage"] > 0
        left = await ctl.log_rows("SELECT COUNT(*) AS n FROM usage WHERE ts < ?", now - 90 * DAY)
        assert left[0]["n"] == 0
        after = (await ctl.get(path, params=params)).json()["items"]
        same(after, want)  # the same answer, from the rollups alone

    control_plane(body)


def test_bad_parameters_are_refused(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = (await ctl.create_org())["id"]
        path = f"/v1/orgs/{org}/usage"
        cases = [
            {"group_by": "week"},
            {"group_by": "day,day"},
            {"group_by": "day,month"},
            {"interval": "minute"},
            {"interval": "hour", "group_by": "day"},
            {"tz": "Mars/Olympus"},
            {"tz": "../etc/passwd"},
            {"from": "yesterday"},
            {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
            {"to": "2026-01-01T00:00:00"},
        ]
        for params in cases:
            assert_error(await ctl.get(path, params=params), 400, "InvalidParameter")
        assert_error(await ctl.get("/v1/orgs/org_missing/usage"), 404, "NotFound")
        empty = await ctl.get(path, params={"interval": "day"})
        assert empty.status_code == 200 and empty.json()["items"] == []
        everything = await ctl.get(
            "/v1/usage",
            params={
                "from": "1970-01-01T00:00:00Z",
                "to": "9999-12-31T00:00:00Z",
                "group_by": "hour",
                "tz": "America/New_York",
            },
        )
        assert everything.status_code == 200, everything.text

    control_plane(body)


def test_sort_and_limit_give_the_top_groups_ties_by_group(control_plane: ControlRunner) -> None:
    rng = random.Random(20261130)

    async def body(ctl: Control) -> None:
        begin = time.time() - 10 * DAY
        _, records, tasks = await folded_and_late(ctl, rng, 8, begin, 8 * DAY, (900, 300))
        start, end = begin + 3600.5, begin + 8 * DAY - 7200.25
        cases = [  # (group_by, sort, limit, percentiles)
            ("org", "-credits_charged", 3, "true"),
            ("org,key", "-requests", 5, "false"),  # the lean cubes
            ("model", "requests", None, "true"),  # ascending
            ("day", "-bytes_out", 2, "false"),
            ("status", "-errors_4xx", 4, "true"),  # many ties at 0: by status
            ("org,model", None, 6, "false"),  # no sort: the first by group
        ]
        for group_by, sort, limit, percentiles in cases:
            params = {"from": iso(start), "to": iso(end), "group_by": group_by}
            params |= {"percentiles": percentiles}
            params |= {"sort": sort} if sort else {}
            params |= {"limit": str(limit)} if limit else {}
            response = await ctl.get("/v1/usage", params=params)
            assert response.status_code == 200, response.text
            want = expected(records, tasks, params)
            if percentiles == "false":
                want = without_percentiles(want)
            if sort:  # a stable sort over the group order: ties stay by group
                field, sign = sort.removeprefix("-"), -1 if sort.startswith("-") else 1
                by_group, want = want, sorted(want, key=lambda row: sign * row[field])
                assert want[:limit] != by_group[:limit], params  # the sort is seen
            assert len(want) > (limit or 0), params  # the cut leaves rows out
            same(response.json()["items"], want[:limit])
        as_csv = await ctl.get(
            "/v1/usage",
            params={"group_by": "org", "sort": "-requests", "limit": "2", "format": "csv"},
        )
        lines = as_csv.text.strip().splitlines()
        assert as_csv.status_code == 200 and len(lines) == 3, as_csv.text  # a header and two
        top = (await ctl.get("/v1/usage", params={"group_by": "org", "sort": "-requests"})).json()
        assert [line.split(",")[0] for line in lines[1:]] == [
            row["org_id"] or "" for row in top["items"][:2]
        ]
        for bad in (
            {"sort": "latency_sum"},
            {"sort": "--requests"},
            {"sort": "name"},
            {"limit": "0"},
            {"limit": "10001"},
            {"limit": "ten"},
        ):
            assert_error(await ctl.get("/v1/usage", params=bad), 400, "InvalidParameter")

    control_plane(body)
