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

Then, on PostgreSQL (a fresh database on the server tests/postgres.py names, dropped after),
the most clients under the same ingest against one control plane, and against two on one
database (client n and edge n through control plane n mod 2, each client an org of its own: a
hold locks its org's row, so one org would queue every hold behind one lock); then the same
with each control plane capped at `--control-cpu` of a core (bench/cpucap.py, a cgroup: as if
each replica had a machine of its own, where on a small machine the control planes, PostgreSQL,
the hold clients and the edges all share its few cores, and the machine is what limits).

Ends with one line `RESULT name=value …`: `sqlite_p99_ratio` of the fewest clients,
`sqlite_holds_per_s_*` of the most, `ingest_records_per_s` the lowest rate an SQLite ingest
phase reached, `pg_replicas_ratio` (holds/s with two replicas ÷ one, issue 25's target at
least 1.6), `pg_replicas_ceiling` (what that ratio could be with every core busy at the
two-replica run's CPU a hold), `pg_replicas_ratio_capped` (the same ratio, each control plane
capped), then each phase's figures. Compare the phases of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import multiprocessing
import os
import random
import secrets
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_usage import MODELS, fold  # noqa: E402
from bench.control_report import Holds, Phases, Replicas, report  # noqa: E402
from bench.cpucap import CpuCap, CpuCapUnavailable  # noqa: E402
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
from tests.postgres import fresh_database  # noqa: E402


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
    wallets: list[RemoteWallet],
    customers: list[Customer],
    clients: int,
    seconds: float,
    tag: str,
) -> Holds:
    """`clients` loops of reserve then release for `seconds`, client n through control plane
    `wallets[n % …]` for org `customers[n % …]`; each reserve's milliseconds."""
    took: list[float] = []
    errors = 0
    ids = itertools.count()
    deadline = time.monotonic() + seconds

    async def client(n: int) -> None:
        nonlocal errors
        wallet, customer = wallets[n % len(wallets)], customers[n % len(customers)]
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
    await asyncio.gather(*(client(n) for n in range(clients)))
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


async def under_ingest(
    wallets: list[RemoteWallet],
    urls: list[str],
    token: str,
    customers: list[Customer],
    clients: int,
    args: Any,
    tag: str,
) -> tuple[Holds, list[dict[str, Any]]]:
    """Holds of `clients` clients while the edges ship usage (edge n to `urls[n % …]`); what
    each edge shipped. `tag` keeps request ids apart: a record seen before costs less."""
    spawn = multiprocessing.get_context("spawn")
    stop, results = spawn.Event(), spawn.Queue()
    rate = args.records_per_second
    shipper = spawn.Process(
        target=edges_process,
        args=(urls, token, customers[0], rate, args.edges, tag, stop, results),
        daemon=True,
    )
    shipper.start()
    try:
        await asyncio.sleep(1.5)  # the child's imports, then a few batches in
        holds = await hold_clients(wallets, customers, clients, args.seconds, tag)
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
    wallets, customers = [RemoteWallet(client)], [customer]
    measured = []
    try:
        await hold_clients(wallets, customers, max(args.clients), 1.0, "warm")  # connections
        for clients in args.clients:
            alone = await hold_clients(wallets, customers, clients, args.seconds, f"a{clients}")
            ingest, shipped = await under_ingest(
                wallets, [url], token, customers, clients, args, f"ingest{clients}"
            )
            measured.append(Phases(clients, alone, ingest, shipped))
            print(f"  {clients} client(s) done", file=sys.stderr, flush=True)
    finally:
        await client.aclose()
    return measured


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU seconds the machine's PostgreSQL server processes have used (those alive now: a
    backend's connection, held by its pool, outlives the measurement)."""
    total = 0.0
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "postgres":
                total += cpu_seconds(int(comm.parent.name))
        except (FileNotFoundError, ProcessLookupError):
            continue  # gone meanwhile
    return total


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far (Linux /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return sum(values) - idle, sum(values)


def pg_replicas(count: int, token: str, tmp: Path, args: Any, cap: float = 0.0) -> Replicas:
    """Starts `count` control planes on a fresh PostgreSQL database (each capped at `cap` of a
    core, if not 0), measures, drops it."""
    clients = max(args.clients)
    with fresh_database() as database_url, contextlib.ExitStack() as caps:
        env = {"NEXTAPI_DATABASE_URL": database_url}
        tag = f"pg{count}{'c' if cap else ''}"
        controls = [control_process(tmp / f"{tag}-{n}", token, env=env) for n in range(count)]
        try:
            urls = [address(control, "control") for control in controls]
            if cap:  # each replica as if on a machine of its own
                for control in controls:
                    caps.enter_context(CpuCap(control.proc.pid, cap))
            # An org a client: a hold locks its org's row, so one org would queue every hold
            # behind one lock however many control planes there are.
            customers = [make_customer(urls[0], token) for _ in range(clients)]

            async def measure() -> tuple[Holds, list[dict[str, Any]]]:
                links = [ControlClient(url, token) for url in urls]
                wallets = [RemoteWallet(link) for link in links]
                try:
                    await hold_clients(wallets, customers, clients, 1.0, f"warm{tag}")
                    return await under_ingest(wallets, urls, token, customers, clients, args, tag)
                finally:
                    for link in links:
                        await link.aclose()

            pids = [control.proc.pid for control in controls]
            cpu_before, ticks_before, began = (
                [cpu_seconds(p) for p in pids],
                machine_ticks(),
                time.monotonic(),
            )
            clients_before, postgres_before = time.process_time(), postgres_cpu_seconds()
            holds, shipped = asyncio.run(measure())
            took = time.monotonic() - began
            clients_cpu = time.process_time() - clients_before
            postgres_cpu = postgres_cpu_seconds() - postgres_before
            used = sum(cpu_seconds(p) for p in pids) - sum(cpu_before)
            busy = (machine_ticks()[0] - ticks_before[0]) / max(
                1, machine_ticks()[1] - ticks_before[1]
            )
        except BaseException:
            for control in controls:
                print("\n".join(control.output().splitlines()[-20:]), file=sys.stderr)
            raise
        finally:
            for control in controls:
                control.stop()
    capped = f", capped at {cap:g} core" if cap else ""
    print(f"  postgresql, {count} replica(s){capped} done", file=sys.stderr, flush=True)
    return Replicas(
        count, holds, shipped, used / took, busy, clients_cpu / took, postgres_cpu / took, cap
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
        "--control-cpu",
        type=float,
        default=0.3,
        help="then the PostgreSQL phases again with each control plane capped at this share of "
        "a core (bench/cpucap.py; 0: not), so that on a small machine the replicas, not the "
        "machine, limit the holds (default 0.3)",
    )
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
        replicas = [pg_replicas(count, token, Path(tmp), args) for count in (1, 2)]
        capped: list[Replicas] = []
        if args.control_cpu:
            try:
                capped = [
                    pg_replicas(count, token, Path(tmp), args, args.control_cpu) for count in (1, 2)
                ]
            except CpuCapUnavailable as unavailable:
                print(f"  no capped phases: {unavailable}", file=sys.stderr)
    report(measured, replicas, capped, args)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # the control plane and the temporary directory are gone by now
        sys.exit(130)
