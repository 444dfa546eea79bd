"""Credit holds against the control plane, alone and while edges ship usage, side by side.

    .venv/bin/python bench/bench_control.py [--seconds 10] [--clients 1,8]
        [--records-per-second 2000] [--edges 2] [--seed-records 0]

Starts a real control plane (`run_proxy.py --role control` on 127.0.0.1:0, its own temporary
data directory, an admin token the edges present, as tests/e2e/harness.py does), makes an org
with plenty of credits and a key through the admin API, then, for each count of `--clients`,
runs two phases of `--seconds`:

1. **alone**: that many concurrent clients reserve and release holds exactly as an edge apart
   does (proxy/remote.py's RemoteWallet over one ControlClient: `POST /v1/edge/wallet/reserve`
   then `release`, msgpack), back to back; each reserve's round trip is timed;
2. **under ingest**: the same, while `--edges` edges (in a process of their own, so making
   batches does not stall the hold clients' loop) ship `--records-per-second` usage records in
   all to `POST /v1/edge/usage` as an edge's spool ingestor does (proxy/usage/ingest.py: every
   0.25 s what came in since, in batches of at most 1000, one batch at a time per edge; an edge
   behind sends full batches back to back; 0: as fast as they are taken, an edge draining its
   spool after an outage). The records are an edge's (the fields of proxy/core/usage_records.py,
   unique request ids, the org's key; mostly task polls, a tenth creates, a few errors).

One client shows what a hold itself costs; several, the hold path's throughput (a reserve and a
release are each a write transaction, fsynced). Prints holds/s and the reserve's p50/p99 of each
phase, the ingest rate the edges reached (less than asked: the control plane did not keep up)
and p99 under ingest ÷ p99 alone (issue 25's target: at most 5).
`--seed-records` first fills the log with that many such records (100 orgs, 30 days, folded into
the rollups), since an insert into a big log may cost more than one into an empty log.

Ends with one line `RESULT name=value …`: `sqlite_p99_ratio` of the fewest clients,
`sqlite_holds_per_s_*` of the most, `ingest_records_per_s` the lowest rate an ingest phase
reached, then each count's figures. Issue 25's PostgreSQL columns (one and two replicas;
`pg_replicas_ratio`: holds/s with two ÷ one, target at least 1.6) are `n/a`, their table rows
empty, until that backend exists. The control plane, the hold clients and the edges share the
machine's CPU: compare the phases of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import random
import secrets
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_usage import MODELS, fold  # noqa: E402
from bench.usage_shipping import (  # noqa: E402
    HOLD_AMOUNT,
    Customer,
    edges_process,
    usage_record,
)
from control.store import requestlog  # noqa: E402
from proxy.core.usage_records import FIELDS  # noqa: E402
from proxy.core.wallet import Hold  # noqa: E402
from proxy.remote import ControlClient, RemoteWallet  # noqa: E402
from tests.e2e.harness import address, control_process  # noqa: E402


@dataclass
class Holds:
    """What one phase's hold clients did."""

    seconds: float
    reserve_ms: list[float]
    errors: int

    @property
    def per_second(self) -> float:
        return len(self.reserve_ms) / self.seconds

    def percentile(self, share: float) -> float:
        ordered = sorted(self.reserve_ms)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def seed_log(data_dir: Path, n: int, days: int = 30) -> float:
    """`n` records of 100 orgs over `days` days, in time order as edges ship them, straight
    into a fresh file, then folded into the rollups (else the control plane's first fold would
    run during the phases); returns the seconds it took."""
    started = time.perf_counter()
    path, now, rng = requestlog.log_path(data_dir), time.time(), random.Random(7)
    asyncio.run(fold(data_dir))  # an empty log: the schema, its migrations applied
    con = sqlite3.connect(path, isolation_level=None)  # the request log's own file
    insert = f"INSERT INTO usage ({', '.join(FIELDS)}) VALUES ({', '.join('?' * len(FIELDS))})"
    for chunk in range(0, n, 100_000):
        rows = []
        for i in range(chunk, min(n, chunk + 100_000)):
            org = Customer(f"org_seed{i % 100:04d}", f"keyseed{i % 100:09d}")
            record = usage_record(rng, org, f"req-seed-{i}") | {
                "ts": now - days * 86400 * (1 - i / n)
            }
            rows.append(tuple(record[field] for field in FIELDS))
        con.execute("BEGIN")
        con.executemany(insert, rows)
        con.execute("COMMIT")
    con.close()
    asyncio.run(fold(data_dir))
    return time.perf_counter() - started


# --- the hold clients ----------------------------------------------------------------------------


async def hold_clients(
    wallet: RemoteWallet, customer: Customer, clients: int, seconds: float, tag: str
) -> Holds:
    """`clients` loops of reserve then release for `seconds`; each reserve's milliseconds."""
    took: list[float] = []
    errors = 0
    ids = itertools.count()
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal errors
        while time.monotonic() < deadline:
            hold = Hold(f"req-{tag}-{next(ids)}", *customer, HOLD_AMOUNT, MODELS[0], "default")
            started = time.perf_counter()
            try:
                refusal = await wallet.reserve(hold)
            except httpx.HTTPError:
                errors += 1
                continue
            took.append((time.perf_counter() - started) * 1000)
            assert refusal is None, refusal
            await wallet.release(hold.request_id)

    began = time.monotonic()
    await asyncio.gather(*(client() for _ in range(clients)))
    return Holds(time.monotonic() - began, took, errors)


# --- the run -------------------------------------------------------------------------------------


def make_customer(url: str, token: str) -> Customer:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as admin:
        org = admin.post("/v1/orgs", json={"name": "bench", "email": "bench@example.com"})
        assert org.status_code == 201, org.text
        org_id = org.json()["id"]
        granted = admin.post(f"/v1/orgs/{org_id}/credits", json={"amount": 2**50})
        assert granted.status_code == 201, granted.text
        key = admin.post(f"/v1/orgs/{org_id}/keys", json={"name": "bench"})
        assert key.status_code == 201, key.text
        return Customer(org_id, key.json()["id"])


@dataclass
class Phases:
    """One count of hold clients, alone and under ingest."""

    clients: int
    alone: Holds
    ingest: Holds
    shipped: list[dict[str, Any]]

    @property
    def ingest_rate(self) -> float:
        return sum(e["stored"] for e in self.shipped) / max(e["seconds"] for e in self.shipped)

    @property
    def p99_ratio(self) -> float:
        return self.ingest.percentile(0.99) / self.alone.percentile(0.99)


async def under_ingest(
    wallet: RemoteWallet, url: str, token: str, customer: Customer, clients: int, args: Any
) -> tuple[Holds, list[dict[str, Any]]]:
    """Holds of `clients` clients while the edges ship usage; what each edge shipped."""
    tag = f"ingest{clients}"  # request ids of their own: a record seen before costs less
    spawn = multiprocessing.get_context("spawn")
    stop, results = spawn.Event(), spawn.Queue()
    shipper = spawn.Process(
        target=edges_process,
        args=(url, token, customer, args.records_per_second, args.edges, tag, stop, results),
        daemon=True,
    )
    shipper.start()
    try:
        await asyncio.sleep(1.5)  # the child's imports, then a few batches in
        holds = await hold_clients(wallet, customer, clients, args.seconds, tag)
        stop.set()
        shipped = await asyncio.to_thread(results.get, True, 60)
        if isinstance(shipped, str):
            raise RuntimeError(shipped)
        await asyncio.to_thread(shipper.join, 10)
    finally:
        stop.set()
        if shipper.is_alive():
            shipper.terminate()
            shipper.join(5)
    return holds, shipped


async def sqlite_phases(url: str, token: str, customer: Customer, args: Any) -> list[Phases]:
    client = ControlClient(url, token)
    wallet = RemoteWallet(client)
    measured = []
    try:
        await hold_clients(wallet, customer, max(args.clients), 1.0, "warm")  # connections
        for clients in args.clients:
            alone = await hold_clients(wallet, customer, clients, args.seconds, f"alone{clients}")
            ingest, shipped = await under_ingest(wallet, url, token, customer, clients, args)
            measured.append(Phases(clients, alone, ingest, shipped))
            print(f"  {clients} client(s) done", file=sys.stderr, flush=True)
    finally:
        await client.aclose()
    return measured


def row(name: str, holds: Holds | None, ingest: str) -> str:
    if holds is None:
        return f"{name:<30} {'n/a':>8} {'n/a':>8} {'n/a':>8}  {ingest}"
    return (
        f"{name:<30} {holds.per_second:>8,.0f} {holds.percentile(0.5):>8.2f} "
        f"{holds.percentile(0.99):>8.2f}  {ingest}"
    )


def report(measured: list[Phases], args: Any) -> None:
    target = f"{args.records_per_second:,} records/s" if args.records_per_second else "all it takes"
    print(f"{args.seconds:g} s a phase; {args.edges} edge(s) shipping {target} in all")
    print(f"{'':<30} {'holds/s':>8} {'p50 ms':>8} {'p99 ms':>8}  usage records/s stored")
    for phases in measured:
        n = phases.clients
        print(row(f"sqlite, {n} client(s), alone", phases.alone, "-"))
        print(row(f"sqlite, {n} client(s), ingest", phases.ingest, f"{phases.ingest_rate:,.0f}"))
    most = measured[-1].clients
    print(row(f"postgresql, 1 replica, {most}", None, "(no PostgreSQL backend yet)"))
    print(row(f"postgresql, 2 replicas, {most}", None, "(no PostgreSQL backend yet)"))
    for phases in measured:
        edges, met = phases.shipped, "met" if phases.p99_ratio <= 5 else "not met"
        behind = args.records_per_second and any(edge["owing"] != 0 for edge in edges)
        print(
            f"{phases.clients} client(s): hold p99 under ingest / alone {phases.p99_ratio:.2f} "
            f"(target <= 5: {met}); the edges stored {sum(e['stored'] for e in edges):,} "
            f"records in {sum(e['batches'] for e in edges)} batches (the slower edge's "
            f"median {max(e['batch_p50_ms'] for e in edges):.0f} ms)"
            + (", and fell behind: the control plane did not keep up" if behind else "")
            + (f"; hold errors {phases.alone.errors} alone" if phases.alone.errors else "")
            + (f"; hold errors {phases.ingest.errors} ingest" if phases.ingest.errors else "")
        )
    first, last = measured[0], measured[-1]
    extra = " ".join(
        f"sqlite_p50_ms_alone_{p.clients}c={p.alone.percentile(0.5):.2f} "
        f"sqlite_p99_ms_alone_{p.clients}c={p.alone.percentile(0.99):.2f} "
        f"sqlite_p50_ms_ingest_{p.clients}c={p.ingest.percentile(0.5):.2f} "
        f"sqlite_p99_ms_ingest_{p.clients}c={p.ingest.percentile(0.99):.2f} "
        f"sqlite_p99_ratio_{p.clients}c={p.p99_ratio:.2f}"
        for p in measured
    )
    print(
        f"RESULT sqlite_p99_ratio={first.p99_ratio:.2f} "
        f"sqlite_holds_per_s_alone={last.alone.per_second:.0f} "
        f"sqlite_holds_per_s_ingest={last.ingest.per_second:.0f} "
        f"ingest_records_per_s={min(p.ingest_rate for p in measured):.0f} "
        f"pg_replicas_ratio=n/a {extra} ingest_target={args.records_per_second} "
        f"edges={args.edges} seed_records={args.seed_records}"
    )


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seconds", type=float, default=10.0, help="each phase's length")
    p.add_argument(
        "--clients",
        type=lambda text: sorted({int(n) for n in text.split(",")}),
        default=[1, 8],
        help="concurrent hold clients, a comma list (default 1,8)",
    )
    p.add_argument(
        "--records-per-second", type=int, default=2000, help="usage, all edges (0: all it takes)"
    )
    p.add_argument("--edges", type=int, default=2, help="edges shipping usage")
    p.add_argument(
        "--seed-records", type=int, default=0, help="usage already in the log, 30 days of it"
    )
    args = p.parse_args()
    token = "nat_bench_" + secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="bench-control-") as tmp:
        data_dir = Path(tmp) / "control"
        if args.seed_records:
            data_dir.mkdir()
            took = seed_log(data_dir, args.seed_records)
            print(f"seeded {args.seed_records:,} usage records in {took:.0f} s", file=sys.stderr)
        control = control_process(data_dir, token)
        try:
            url = address(control, "control")
            customer = make_customer(url, token)
            measured = asyncio.run(sqlite_phases(url, token, customer, args))
        except BaseException:
            print("\n".join(control.output().splitlines()[-20:]), file=sys.stderr)
            raise
        finally:
            control.stop()
    report(measured, args)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # the control plane and the temporary directory are gone by now
        sys.exit(130)
