"""bench_control.py's figures: what each phase measured, and the report it prints (the table,
the targets, the RESULT line)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


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


@dataclass
class Replicas:
    """The most hold clients under ingest, against `count` control planes on one PostgreSQL
    database (client n through control plane n mod count, each client its own org)."""

    count: int
    ingest: Holds
    shipped: list[dict[str, Any]]
    control_cores: float  # CPU the control planes used, in cores, over the measurement
    machine_busy: float  # the share of all the machine's CPU in use meanwhile
    client_cores: float  # and the hold clients' process (this one)
    postgres_cores: float  # and the PostgreSQL server's processes (its every backend)
    cap: float  # the share of a core each control plane was capped at (0: none)

    @property
    def cpu_per_hold(self) -> float:
        """CPU seconds a hold took the processes measured (the control planes, the hold
        clients, PostgreSQL; ingest's share included, the same in every run)."""
        return (self.control_cores + self.client_cores + self.postgres_cores) / (
            self.ingest.per_second
        )


def replicas_ratio(pair: list[Replicas]) -> float:
    """Holds/s with two replicas ÷ one."""
    return pair[-1].ingest.per_second / pair[0].ingest.per_second


def row(name: str, holds: Holds | None, ingest: str) -> str:
    if holds is None:
        return f"{name:<30} {'n/a':>8} {'n/a':>8} {'n/a':>8}  {ingest}"
    return (
        f"{name:<30} {holds.per_second:>8,.0f} {holds.percentile(0.5):>8.2f} "
        f"{holds.percentile(0.99):>8.2f}  {ingest}"
    )


def report(
    measured: list[Phases], replicas: list[Replicas], capped: list[Replicas], args: Any
) -> None:
    target = f"{args.records_per_second:,} records/s" if args.records_per_second else "all it takes"
    print(f"{args.seconds:g} s a phase; {args.edges} edge(s) shipping {target} in all")
    print(f"{'':<30} {'holds/s':>8} {'p50 ms':>8} {'p99 ms':>8}  usage records/s stored")
    for phases in measured:
        n = phases.clients
        print(row(f"sqlite, {n} client(s), alone", phases.alone, "-"))
        print(row(f"sqlite, {n} client(s), ingest", phases.ingest, f"{phases.ingest_rate:,.0f}"))
    most = measured[-1].clients
    for run in [*replicas, *capped]:
        stored = sum(e["stored"] for e in run.shipped) / max(e["seconds"] for e in run.shipped)
        capped_at = f", {run.cap:g} core each" if run.cap else ""
        name = f"postgresql, {run.count} replica{'s' if run.count > 1 else ''}{capped_at}, {most}c"
        print(row(name, run.ingest, f"{stored:,.0f}"))
        print(
            f"{'':<30} the control planes used {run.control_cores:.2f} of the machine's "
            f"{os.cpu_count()} cores, the hold clients {run.client_cores:.2f}, PostgreSQL "
            f"{run.postgres_cores:.2f}, the machine was {run.machine_busy:.0%} busy"
        )
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
    one, two = replicas[0].ingest, replicas[-1].ingest
    pg_ratio = replicas_ratio(replicas)
    met = "met" if pg_ratio >= 1.6 else "not met"
    print(f"postgresql: holds/s with two replicas / one {pg_ratio:.2f} (target >= 1.6: {met})")
    # The most two replicas could reach on this machine: its every core busy at the
    # two-replica run's cost a hold.
    ceiling = pg_ratio / max(replicas[-1].machine_busy, 0.01)
    print(
        f"postgresql: a hold took {replicas[0].cpu_per_hold * 1000:.1f} ms of CPU with one "
        f"replica, {replicas[-1].cpu_per_hold * 1000:.1f} with two (control planes, clients, "
        f"PostgreSQL); with two the machine was {replicas[-1].machine_busy:.0%} busy, so two "
        f"replicas could reach about {ceiling:.2f} x one here ({os.cpu_count()} cores all busy)"
    )
    capped_result = "pg_replicas_ratio_capped=n/a "
    if capped:
        capped_ratio = replicas_ratio(capped)
        met = "met" if capped_ratio >= 1.6 else "not met"
        print(
            f"postgresql, each control plane capped at {capped[0].cap:g} of a core (as if on a "
            f"machine of its own): holds/s with two replicas / one {capped_ratio:.2f} "
            f"(target >= 1.6: {met})"
        )
        capped_result = (
            f"pg_replicas_ratio_capped={capped_ratio:.2f} "
            f"pg_holds_per_s_capped_1={capped[0].ingest.per_second:.0f} "
            f"pg_holds_per_s_capped_2={capped[-1].ingest.per_second:.0f} "
            f"pg_control_cores_capped_1={capped[0].control_cores:.2f} "
            f"pg_control_cores_capped_2={capped[-1].control_cores:.2f} "
            f"pg_machine_busy_capped_2={capped[-1].machine_busy:.2f} "
        )
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
        f"pg_replicas_ratio={pg_ratio:.2f} "
        f"pg_holds_per_s_1={one.per_second:.0f} pg_holds_per_s_2={two.per_second:.0f} "
        f"pg_p99_ms_1={one.percentile(0.99):.2f} pg_p99_ms_2={two.percentile(0.99):.2f} "
        f"pg_control_cores_1={replicas[0].control_cores:.2f} "
        f"pg_control_cores_2={replicas[-1].control_cores:.2f} "
        f"pg_machine_busy_1={replicas[0].machine_busy:.2f} "
        f"pg_machine_busy_2={replicas[-1].machine_busy:.2f} "
        f"pg_client_cores_1={replicas[0].client_cores:.2f} "
        f"pg_client_cores_2={replicas[-1].client_cores:.2f} "
        f"pg_postgres_cores_1={replicas[0].postgres_cores:.2f} "
        f"pg_postgres_cores_2={replicas[-1].postgres_cores:.2f} "
        f"pg_cpu_ms_per_hold_1={replicas[0].cpu_per_hold * 1000:.2f} "
        f"pg_cpu_ms_per_hold_2={replicas[-1].cpu_per_hold * 1000:.2f} "
        f"pg_replicas_ceiling={ceiling:.2f} {capped_result}"
        f"{extra} ingest_target={args.records_per_second} control_cpu={args.control_cpu:g} "
        f"edges={args.edges} seed_records={args.seed_records}"
    )
