"""Usage aggregates at scale, and what the rollups cost the usage spool's ingest.

    .venv/bin/python bench/bench_usage.py [--records 5000000] [--orgs 1000] [--days 90]

1. Seeds `--records` usage records over `--days` days and `--orgs` orgs (and what billing
   writes beside them: the tasks their charges name, each charge in the ledger, each accepted
   create's hold) straight into a fresh SQLite file, folds them into the rollups, then asks the
   control plane (the Starlette app in-process, through httpx) for a 90-day daily aggregate of
   one org and the all-orgs monthly aggregate, `--repeat` times each (a different org each
   time), and prints the median latencies (targets: 100 ms and 500 ms).
2. Ingests `--ingest` records through `store_usage` in batches of 1000 (as the spool ingestor
   does) into two fresh files, side by side, without and with the rollup folder running
   (folding every second, sixty times as often as the control plane does), and prints both
   rates and their ratio (target: at least 0.90).
3. Times the server render of the dashboard's heaviest pages (UI_PAGES: the overview, the orgs
   list, the biggest org's page and its tabs) through the same in-process app with a signed-in
   session, `--repeat` times each, and prints the median per page (target: 300 ms). A page that
   this branch does not have (404) is reported as skipped.

    .venv/bin/python bench/bench_usage.py --records 200000 --orgs 100 --ingest 20000 --rounds 1
is a quick try (a minute or so).

Ends with one line `RESULT name=value …`. A little past 400 lines: its three parts share the one
seeded database and its seeding, which is most of the file.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from control.aggregates.rollup import CREATE_ROUTE  # noqa: E402
from control.api.usage import store_usage  # noqa: E402
from control.app import create_app  # noqa: E402
from control.store import db as dbm  # noqa: E402
from control.store import requestlog  # noqa: E402
from control.store.state import ControlState  # noqa: E402
from proxy.core.usage_records import FIELDS  # noqa: E402

TOKEN = "nat_bench-usage-admin-token-0123456789"
DAY = 86400
GET_ROUTE = "GET /api/v3/contents/generations/tasks/{id}"
ROUTES = [
    (GET_ROUTE, 0.78),
    (CREATE_ROUTE, 0.10),
    ("GET /api/v3/contents/generations/tasks", 0.07),
    ("DELETE /api/v3/contents/generations/tasks/{id}", 0.02),
    (None, 0.03),
]
STATUSES = [(200, 0.93), (400, 0.02), (401, 0.01), (404, 0.01), (429, 0.02), (502, 0.01)]
MODELS = ["seedance-1-0-pro", "seedance-1-0-lite", "seedance-1-5-pro"]
# The share of all records that org_0000 makes: 1.25M of the default 5M, so the dashboard is
# timed over an org with millions of records.
HEAVY_SHARE = 0.25
KEYS_PER_ORG = 3


def key_id(org: int, n: int) -> str:
    """A key id as the API takes it (16 letters and digits)."""
    return f"key{org:05d}{n:08d}"


def _picker(rng: random.Random, weighted: list[tuple[Any, float]]) -> Any:
    values = [v for v, _ in weighted]
    cum = []
    total = 0.0
    for _, w in weighted:
        total += w
        cum.append(total)

    def pick() -> Any:
        return rng.choices(values, cum_weights=cum)[0]

    return pick


def records(rng: random.Random, n: int, orgs: int, start: float, span: float, tag: str):
    """Usage record tuples (FIELDS order) and task rows for their charges."""
    route_of, status_of = _picker(rng, ROUTES), _picker(rng, STATUSES)
    for i in range(n):
        org = 0 if rng.random() < HEAVY_SHARE else rng.randrange(orgs)
        route, status = route_of(), status_of()
        credits, task_id, task = 0, None, None
        if route == CREATE_ROUTE:
            credits = rng.randrange(100_000, 5_000_000)
            task_id = f"cgt-{tag}-{i}" if status == 200 else None
        elif route == GET_ROUTE:
            task_id = f"cgt-{tag}-{rng.randrange(max(1, i))}"
            if status == 200 and rng.random() < 0.12:  # the poll that saw the task end
                task_id = f"cgt-{tag}-done-{i}"
                credits = rng.randrange(100_000, 3_000_000)
                task = (task_id, f"org_{org:04d}", rng.randrange(10_000, 400_000))
        model = MODELS[(org + (i % 7 == 0)) % len(MODELS)]
        record = (
            f"req-{tag}-{i:08d}",
            start + rng.random() * span,
            f"org_{org:04d}",
            key_id(org, rng.randrange(KEYS_PER_ORG)),
            route.split()[0] if route else "GET",
            route,
            status,
            round(rng.lognormvariate(3.5, 1.0), 3),
            None,
            rng.randrange(100, 3000),
            rng.randrange(200, 20000),
            credits,
            model,
            task_id,
            "rate" if status == 429 and rng.random() < 0.5 else None,  # limited_by
        )
        yield record, task


def seed(path: Path, n: int, orgs: int, days: int) -> float:
    """Fill the file with `n` records; returns the seconds it took."""
    started = time.perf_counter()
    asyncio.run(_schema(path))
    con = sqlite3.connect(path, isolation_level=None)
    # The records go to the request log's file (control/store/requestlog.py), the rest here.
    con.execute("ATTACH DATABASE ? AS log", (str(requestlog.log_path(path.parent)),))
    for schema in ("main", "log"):
        con.execute(f"PRAGMA {schema}.synchronous=OFF")
    con.execute("PRAGMA cache_size=-262144")
    now = time.time()
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO orgs (id, name, email, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        [(f"org_{o:04d}", f"org {o}", f"o{o}@example.com", now, now) for o in range(orgs)],
    )
    con.executemany(
        "INSERT INTO api_keys (id, org_id, name, environment, secret_hash, created_at, "
        "updated_at) VALUES (?, ?, ?, 'live', 'x', ?, ?)",
        [
            (key_id(o, n), f"org_{o:04d}", f"key {n}", now, now)
            for o in range(orgs)
            for n in range(KEYS_PER_ORG)
        ],
    )
    con.execute("COMMIT")
    con.executemany(  # credits for years, so the ledger's charges below leave a balance
        "INSERT INTO ledger (org_id, kind, amount, reason, actor, created_at) "
        "VALUES (?, 'grant', ?, 'bench', 'bench', ?)",
        [(f"org_{o:04d}", 10**15, now - days * DAY) for o in range(orgs)],
    )
    rng = random.Random(2026)
    insert = f"INSERT INTO log.usage ({', '.join(FIELDS)}) VALUES ({', '.join('?' * len(FIELDS))})"
    chunk: list[tuple] = []
    tasks: list[tuple] = []
    holds: list[tuple] = []

    def flush() -> None:
        con.execute("BEGIN")
        con.executemany(insert, chunk)
        # What billing writes beside the records: each charged task's charge in the ledger,
        # each accepted create's hold (settled), so the org pages read ledgers of this size.
        con.executemany(
            "INSERT INTO tasks (id, org_id, key_id, status, tokens, created_at, updated_at) "
            "VALUES (?, ?, 'k', 'succeeded', ?, ?, ?)",
            [(*task, ts, ts) for task, ts, _ in tasks],
        )
        con.executemany(
            "INSERT INTO ledger (org_id, key_id, kind, amount, task_id, reason, actor, "
            "created_at) VALUES (?, ?, 'charge', ?, ?, 'bench', 'system:billing', ?)",
            [(task[1], key, -credits, task[0], ts) for task, ts, (key, credits) in tasks],
        )
        con.executemany(
            "INSERT INTO reservations (id, org_id, key_id, amount, model, tier, task_id, "
            "status, created_at, settled_at) VALUES (?, ?, ?, ?, ?, 'default', ?, 'settled', ?, ?)",
            holds,
        )
        con.execute("COMMIT")
        chunk.clear()
        tasks.clear()
        holds.clear()

    fields = {name: i for i, name in enumerate(FIELDS)}
    for record, task in records(rng, n, orgs, now - days * DAY, days * DAY - 60, "seed"):
        chunk.append(record)
        ts, org_id, key = record[fields["ts"]], record[fields["org_id"]], record[fields["key_id"]]
        credits, task_id = record[fields["credits"]], record[fields["task_id"]]
        if task:
            tasks.append((task, ts, (key, credits)))
        elif record[fields["route"]] == CREATE_ROUTE and task_id:
            model = record[fields["model"]]
            holds.append((f"hold-{task_id}", org_id, key, credits, model, task_id, ts, ts + 60))
        if len(chunk) >= 200_000:
            flush()
            print(
                f"  seeded {con.execute('SELECT MAX(rowid) FROM log.usage').fetchone()[0]:,}",
                file=sys.stderr,
            )
    flush()
    con.close()
    return time.perf_counter() - started


async def _schema(path: Path) -> None:
    db = await dbm.connect(path)
    await db.close()
    log = await requestlog.connect(requestlog.log_path(path.parent))
    await log.close()


async def fold(data_dir: Path) -> float:
    state = await ControlState.open(data_dir)
    try:
        started = time.perf_counter()
        await state.rollups.fold()
        return time.perf_counter() - started
    finally:
        await state.close()


async def queries(
    data_dir: Path, orgs: int, days: int, repeat: int, end: float
) -> dict[str, float]:
    """`end`: when seeding began, so the window holds every record however long seeding and
    folding took."""
    state = await ControlState.open(data_dir)
    await state.admin.bootstrap(TOKEN)
    app = create_app(state)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    window = {
        "from": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end - days * DAY)),
        "to": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end)),
    }
    one_org, all_orgs = [], []
    async with httpx.AsyncClient(transport=transport, base_url="http://c", headers=headers) as c:
        await c.get("/v1/orgs")  # the admin token's Argon2id check, once
        rng = random.Random(1)
        for _ in range(repeat):
            org = f"org_{rng.randrange(orgs):04d}"
            started = time.perf_counter()
            r = await c.get(f"/v1/orgs/{org}/usage", params=window | {"group_by": "day"})
            one_org.append(time.perf_counter() - started)
            assert r.status_code == 200 and r.json()["items"], r.text[:300]
            started = time.perf_counter()
            r = await c.get("/v1/usage", params=window | {"group_by": "month"})
            all_orgs.append(time.perf_counter() - started)
            assert r.status_code == 200 and r.json()["items"], r.text[:300]
        total = sum(row["requests"] for row in r.json()["items"])
    await state.close()
    return {
        "one_org_ms": statistics.median(one_org) * 1000,
        "all_orgs_ms": statistics.median(all_orgs) * 1000,
        "all_orgs_requests": total,
    }


async def ingest(data_dir: Path, n: int, with_folder: bool) -> float:
    """Records per second through store_usage, 1000 a batch."""
    state = await ControlState.open(data_dir)
    folder = state.rollups
    if with_folder:
        folder.start(1.0)
    rng = random.Random(3)
    now = time.time()
    batches: list[list[dict[str, Any]]] = [[]]
    for record, _ in records(rng, n, 1000, now - 60, 60, "ingest"):
        if len(batches[-1]) == 1000:
            batches.append([])
        batches[-1].append(dict(zip(FIELDS, record, strict=True)))
    started = time.perf_counter()
    for batch in batches:
        await store_usage(state, batch)
    elapsed = time.perf_counter() - started
    await folder.stop()
    if with_folder:  # everything ingested was folded, or is left for the next round
        await folder.fold()
        rollups = await folder.open()
        row = await rollups.fetch_one("SELECT SUM(requests) FROM usage_rollup_all")
        assert row is not None and row[0] == n, (row, n)
    await state.close()
    return n / elapsed


# The dashboard pages timed: (result name, path); `{org}` is the org with the most requests,
# `{key}` its busiest key.
UI_PAGES = [
    ("ui_overview_24h_ms", "/ui/"),
    ("ui_overview_24h_json_ms", "/ui/overview.json?range=24h"),
    ("ui_overview_90d_ms", "/ui/?range=90d"),
    ("ui_overview_90d_json_ms", "/ui/overview.json?range=90d"),
    ("ui_orgs_ms", "/ui/orgs"),
    ("ui_org_keys_ms", "/ui/orgs/{org}"),
    ("ui_org_usage_90d_ms", "/ui/orgs/{org}/usage?range=90d"),
    ("ui_org_usage_90d_json_ms", "/ui/orgs/{org}/usage.json?range=90d"),
    ("ui_org_billing_ms", "/ui/orgs/{org}/billing"),
    ("ui_org_log_4xx_ms", "/ui/orgs/{org}/usage?range=90d&status=4xx"),
    ("ui_org_log_5xx_ms", "/ui/orgs/{org}/usage?range=90d&status=5xx"),
    ("ui_org_log_key_ms", "/ui/orgs/{org}/usage?range=90d&key_id={key}"),
]


async def ui_pages(data_dir: Path, days: int, repeat: int) -> dict[str, float | None]:
    """Median milliseconds of each UI_PAGES render (None: the page does not exist here)."""
    state = await ControlState.open(data_dir)
    await state.admin.bootstrap(TOKEN)
    app = create_app(state)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    timings: dict[str, float | None] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://c") as c:
        end = time.time()
        window = {
            "from": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end - days * DAY)),
            "to": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end)),
        }
        by_org = await c.get("/v1/usage", params=window | {"group_by": "org"}, headers=headers)
        biggest = max(by_org.json()["items"], key=lambda row: row["requests"])["org_id"]
        by_key = await c.get(
            f"/v1/orgs/{biggest}/usage", params=window | {"group_by": "key"}, headers=headers
        )
        busiest = max(by_key.json()["items"], key=lambda row: row["requests"])["key_id"]
        heaviest = max(row["requests"] for row in by_org.json()["items"])
        print(f"dashboard timed over {biggest} ({heaviest:,} records)")
        form = await c.get("/ui/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert csrf is not None
        signed = await c.post("/ui/login", data={"token": TOKEN, "csrf_token": csrf.group(1)})
        assert signed.status_code == 303, signed.text[:300]
        for name, path in UI_PAGES:
            url = path.format(org=biggest, key=busiest)
            first = await c.get(url)  # warms caches the way a second visit finds them
            if first.status_code == 404:
                timings[name] = None
                continue
            assert first.status_code == 200, (url, first.status_code, first.text[:300])
            samples = []
            for _ in range(repeat):
                started = time.perf_counter()
                r = await c.get(url)
                samples.append(time.perf_counter() - started)
                assert r.status_code == 200, (url, r.status_code)
            timings[name] = statistics.median(samples) * 1000
    await state.close()
    return timings


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--records", type=int, default=5_000_000)
    p.add_argument("--orgs", type=int, default=1000)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--repeat", type=int, default=15)
    p.add_argument("--ingest", type=int, default=200_000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "big"
        data_dir.mkdir()
        seed_started = time.time()
        seeded = seed(data_dir / "nextapi.sqlite3", args.records, args.orgs, args.days)
        print(
            f"seeded {args.records:,} records over {args.days} days, {args.orgs} orgs "
            f"in {seeded:.0f} s"
        )
        folded = asyncio.run(fold(data_dir))
        print(f"folded them into the rollups in {folded:.0f} s")
        timing = asyncio.run(queries(data_dir, args.orgs, args.days, args.repeat, seed_started))
        assert timing["all_orgs_requests"] == args.records, timing
        print(
            f"one org, {args.days} days by day:   median {timing['one_org_ms']:.1f} ms "
            "(target < 100)"
        )
        print(
            f"all orgs, {args.days} days by month: median {timing['all_orgs_ms']:.1f} ms "
            "(target < 500)"
        )
        pages = asyncio.run(ui_pages(data_dir, args.days, args.repeat))
        for name, ms in pages.items():
            shown = "skipped (no such page here)" if ms is None else f"median {ms:.1f} ms"
            print(
                f"dashboard {name.removeprefix('ui_').removesuffix('_ms')}: {shown} (target < 300)"
            )
        plain, rolled = [], []
        for round_ in range(args.rounds):  # alternating, so drift hits both sides alike
            for with_folder, rates in ((False, plain), (True, rolled)):
                target = Path(tmp) / f"ingest-{round_}-{with_folder}"
                target.mkdir()
                rates.append(asyncio.run(ingest(target, args.ingest, with_folder)))
        base, with_rollups = statistics.median(plain), statistics.median(rolled)
        ratio = with_rollups / base
        print(
            f"spool ingest: {base:,.0f} records/s without the rollups, "
            f"{with_rollups:,.0f} with (ratio {ratio:.2f}, target >= 0.90)"
        )
        print(
            f"RESULT records={args.records} orgs={args.orgs} days={args.days} "
            f"seed_s={seeded:.0f} fold_s={folded:.0f} "
            f"one_org_daily_p50_ms={timing['one_org_ms']:.1f} "
            f"all_orgs_monthly_p50_ms={timing['all_orgs_ms']:.1f} "
            f"ingest_plain_rps={base:.0f} ingest_rollup_rps={with_rollups:.0f} "
            f"ingest_ratio={ratio:.3f} "
            + " ".join(
                f"{name}={'skipped' if ms is None else f'{ms:.1f}'}" for name, ms in pages.items()
            )
        )


if __name__ == "__main__":
    main()
