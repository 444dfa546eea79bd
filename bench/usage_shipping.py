"""Edges shipping usage records to a control plane, as an edge's spool ingestor does
(proxy/usage/ingest.py), in a process of their own: bench_control.py's ingest load."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import signal
import time
from multiprocessing.synchronize import Event
from typing import Any, NamedTuple

from bench.bench_usage import GET_ROUTE, MODELS, ROUTES, STATUSES
from control.aggregates.rollup import CREATE_ROUTE
from proxy.core.usage_records import FIELDS
from proxy.remote import ControlClient

TICK = 0.25  # the spool ingestor's interval
BATCH = 1000  # and its batch size
HOLD_AMOUNT = 5_000_000  # micro-credits: about a create's most possible cost
# An edge's mix of routes and statuses, as bench_usage seeds them: mostly task polls.
ROUTE_NAMES, ROUTE_SHARES = zip(*ROUTES, strict=True)
STATUS_CODES, STATUS_SHARES = zip(*STATUSES, strict=True)


class Customer(NamedTuple):
    org_id: str
    key_id: str


# --- the edges shipping usage (a process of their own) ------------------------------------------


def usage_record(rng: random.Random, customer: Customer, request_id: str) -> dict[str, Any]:
    """One record as proxy/usage/builders.py builds it, for a request of the edge's mix."""
    route = rng.choices(ROUTE_NAMES, ROUTE_SHARES)[0]
    status = rng.choices(STATUS_CODES, STATUS_SHARES)[0]
    credits, task_id = 0, None
    if route == CREATE_ROUTE:
        credits = rng.randrange(100_000, HOLD_AMOUNT)
        task_id = f"cgt-{request_id}" if status == 200 else None
    elif route == GET_ROUTE:
        task_id = f"cgt-{rng.getrandbits(48):012x}"
    latency = round(rng.lognormvariate(3.5, 1.0), 3)
    return {
        "request_id": request_id,
        "ts": time.time(),
        "org_id": customer.org_id,
        "key_id": customer.key_id,
        "method": route.split()[0] if route else "GET",
        "route": route,
        "status": status,
        "latency_ms": latency,
        "upstream_latency_ms": round(latency * 0.8, 3) if route else None,
        "bytes_in": rng.randrange(100, 3000),
        "bytes_out": rng.randrange(200, 20000),
        "credits": credits,
        "model": rng.choice(MODELS) if route else None,
        "task_id": task_id,
        "limited_by": None,
    }


async def edge_ships(
    url: str, token: str, customer: Customer, rate: float, name: str, stop: Event
) -> dict[str, Any]:
    """One edge shipping `rate` records/s (0: as fast as they are taken, an edge draining a
    backlog) until `stop`: what it stored, over how long, and what it was left owing. Each
    batch is made as it is sent, so an edge behind costs no more to generate than one keeping
    up."""
    assert set(usage_record(random.Random(0), customer, "x")) == set(FIELDS)
    client = ControlClient(url, token)
    rng = random.Random(name)
    shipped, due = 0, 0
    batch_ms: list[float] = []
    started = kept_up_at = time.monotonic()
    try:
        while not stop.is_set():
            ticked = time.monotonic()
            due = int(rate * (ticked - started)) if rate else None  # None: always a batch more
            while (due is None or shipped < due) and not stop.is_set():  # a batch at a time
                size = BATCH if due is None else min(due - shipped, BATCH)
                batch = [
                    usage_record(rng, customer, f"req-{name}-{shipped + i}") for i in range(size)
                ]
                sent = time.perf_counter()
                await client.ship_usage(batch)
                batch_ms.append((time.perf_counter() - sent) * 1000)
                shipped += size
            if due is not None and shipped >= due:
                kept_up_at = ticked
            await asyncio.sleep(max(0.0, TICK - (time.monotonic() - started) % TICK))
    finally:
        await client.aclose()
    behind = due is None or shipped < due
    return {
        "stored": shipped,
        # Kept up: the records due by the last tick over the time to it; else all it took.
        "seconds": max(1e-3, (time.monotonic() if behind else kept_up_at) - started),
        "owing": (None if due is None else due - shipped) if behind else 0,
        "batches": len(batch_ms),
        "batch_p50_ms": sorted(batch_ms)[len(batch_ms) // 2] if batch_ms else 0.0,
    }


def edges_process(
    urls: list[str], token: str, customer: Customer, rate: float, edges: int, tag: str,
    stop: Event, results: multiprocessing.Queue,
) -> None:  # fmt: skip
    """`edges` edges shipping `rate` records/s in all until `stop`, edge n to control plane
    `urls[n % len(urls)]`; what each did, to `results`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the parent's: it stops this
    shipping = (
        edge_ships(urls[n % len(urls)], token, customer, rate / edges, f"{tag}-e{n}", stop)
        for n in range(edges)
    )

    async def run() -> list[dict[str, Any]]:
        return await asyncio.gather(*shipping)

    try:
        results.put(asyncio.run(run()))
    except Exception as exc:  # the parent says so rather than waiting out its timeout
        results.put(f"the edges failed: {exc!r}")
