"""A soak: ordinary customers' mixed traffic for `--minutes`, in windows alternately without and
with attackers alongside (1,000 idle connections, 10 slowloris clients, 5 key guessers), all
against real processes on loopback: a control plane (`--role control`, SQLite in a temporary
directory), an edge apart (`--role edge`) and the Seedance simulator as upstream.

    .venv/bin/python bench/bench_soak.py [--minutes 10] [--window 30] [--idle 1000] [--slow 10]
        [--guessers 5] [--clients 4] [--warmup 10]

The ordinary clients (`--clients`, from 127.0.0.1, httpx with keep-alive) create tasks, get the
tasks they created and list tasks, back to back; each request is timed and counted in the window
it started in; an error is one that fails (connection error, timeout, a status other than 200).
The attackers run in a process of their own (bench/attackers.py), started at a "with" window's
start and stopped at its end; the window closes once the edge has let go of their connections.
The edge's RSS and open descriptors are sampled after the warm-up and at every window's end.

Prints a table per window (phase, requests, p50, p99, errors, attackers' connections held, the
edge's RSS and descriptors) and ends with one line
`RESULT p99_ms=… p99_ratio=… errors=… rss_growth_mb=…`: p99_ms is the ordinary requests' p99
with the attackers, p99_ratio that ÷ their p99 without (each pooled over its phase's windows,
measured in the same run), errors counts every ordinary request that failed (warm-up included),
rss_growth_mb is the edge's RSS at the end less after the warm-up (MiB). Targets: errors 0,
rss_growth_mb ≤ 64, p99_ratio ≤ 3. Absolute latencies depend on the machine; the ratio is what
to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import resource
import signal
import sys
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_relay import rss_mib  # noqa: E402
from proxy.core.keys import parse_key  # noqa: E402
from tests.e2e.harness import TEXT_CREATE, UNLIMITED, Cluster, Simulator  # noqa: E402

PY = sys.executable
TASKS = "/contents/generations/tasks"
CREATE_SHARE, LIST_SHARE = 0.2, 0.2  # of ordinary requests; the rest are gets
REQUEST_TIMEOUT = 10.0  # seconds: a slower answer is an error
SETTLE_TIMEOUT = 20.0  # seconds to wait for the edge to let go of the attackers' connections


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of `values` (seconds) in milliseconds; NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)] * 1000


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def open_files_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft = line.split()[3]
            return 1 << 30 if soft == "unlimited" else int(soft)
    raise RuntimeError("no open-files line")


@dataclass
class Window:
    phase: str  # warmup | without | with
    started: float = field(default_factory=time.monotonic)
    ended: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # what failed: status or exception
    kinds: Counter[str] = field(default_factory=Counter)  # create | get | list
    attack: list[dict[str, Any]] = field(default_factory=list)  # the attackers' lines
    rss_mib: float = 0.0  # the edge's, at the window's end
    fds: int = 0
    peak_rss_mib: float = 0.0  # the most seen while the window ran
    peak_fds: int = 0
    settled: bool = True  # the edge let go of the attackers' connections in time

    def record(self, kind: str, seconds: float, failure: str | None) -> None:
        self.kinds[kind] += 1
        if failure is None:
            self.latencies.append(seconds)
        else:
            self.errors[failure] += 1

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(self.errors.values())


@dataclass
class Traffic:
    current: Window
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def ordinary_client(index: int, edge_url: str, key: str, traffic: Traffic) -> None:
    """Creates, gets of its own tasks and lists, back to back on one keep-alive client."""
    rng = random.Random(index)
    own: deque[str] = deque(maxlen=50)  # its newest tasks, the ones it polls
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=f"{edge_url}/api/v3", headers=headers, timeout=REQUEST_TIMEOUT
    ) as client:
        while not traffic.stop.is_set():
            draw = rng.random()
            kind = "create" if not own or draw < CREATE_SHARE else "get"
            if kind == "get" and draw < CREATE_SHARE + LIST_SHARE:
                kind = "list"
            window = traffic.current
            started = time.perf_counter()
            failure: str | None = None
            try:
                if kind == "create":
                    response = await client.post(TASKS, json=TEXT_CREATE)
                elif kind == "list":
                    response = await client.get(TASKS, params={"page_size": 10})
                else:
                    response = await client.get(f"{TASKS}/{rng.choice(own)}")
                if response.status_code != 200:
                    failure = f"{kind} {response.status_code}"
                elif kind == "create":
                    own.append(response.json()["id"])
            except httpx.HTTPError as exc:
                failure = f"{kind} {type(exc).__name__}"
            window.record(kind, time.perf_counter() - started, failure)


class Attackers:
    """bench/attackers.py as a child process; keeps the lines it prints."""

    def __init__(self, process: asyncio.subprocess.Process, window: Window) -> None:
        self.process, self.window = process, window
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls, args: argparse.Namespace, edge: str, key: str, window: Window
    ) -> Attackers:
        parsed = parse_key(key)
        assert parsed is not None
        process = await asyncio.create_subprocess_exec(
            *(PY, str(ROOT / "bench" / "attackers.py"), "--edge", edge),
            *("--key-id", parsed.key_id, "--environment", parsed.environment),
            *("--idle", str(args.idle), "--slow", str(args.slow)),
            *("--guessers", str(args.guessers)),
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(process, window)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.window.attack.append(json.loads(line))

    async def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        await self.reader


async def watch(pid: int, window: Window, seconds: float) -> None:
    """Sleep `seconds`, sampling the edge's RSS and descriptors twice a second."""
    until = time.monotonic() + seconds
    while (left := until - time.monotonic()) > 0:
        window.peak_rss_mib = max(window.peak_rss_mib, rss_mib(pid))
        window.peak_fds = max(window.peak_fds, open_fds(pid))
        await asyncio.sleep(min(0.5, left))


async def settle(pid: int, fds_before: int) -> bool:
    """Wait until the edge holds about as many descriptors as before the attack."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while open_fds(pid) > fds_before + 16:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def soak(args: argparse.Namespace, edge_url: str, key: str, pid: int) -> list[Window]:
    """The warm-up window, then the measured ones; each closed with the edge's RSS and fds."""
    warmup = Window("warmup")
    traffic = Traffic(warmup)
    clients = [
        asyncio.create_task(ordinary_client(i, edge_url, key, traffic)) for i in range(args.clients)
    ]
    await asyncio.sleep(args.warmup)
    warmup.ended, warmup.rss_mib, warmup.fds = time.monotonic(), rss_mib(pid), open_fds(pid)
    windows = [warmup]
    count = max(2, 2 * round(args.minutes * 60 / args.window / 2))
    for index in range(count):
        window = Window("with" if index % 2 else "without")
        traffic.current = window
        fds_before = open_fds(pid)
        attackers = None
        try:
            if window.phase == "with":
                edge = edge_url.removeprefix("http://")
                attackers = await Attackers.start(args, edge, key, window)
            await watch(pid, window, args.window)
            if attackers is not None:
                await attackers.stop()
                window.settled = await settle(pid, fds_before)
        finally:
            if attackers is not None and attackers.process.returncode is None:
                attackers.process.kill()  # (the bench failed: leave no attackers behind)
        window.ended, window.rss_mib, window.fds = time.monotonic(), rss_mib(pid), open_fds(pid)
        windows.append(window)
        print(row(len(windows) - 1, window), flush=True)
    traffic.stop.set()
    await asyncio.gather(*clients)
    return windows


HEADER = (
    f"{'#':>3} {'phase':<7} {'secs':>5} {'reqs':>6} {'req/s':>6} {'p50 ms':>7} {'p99 ms':>7} "
    f"{'errors':>6} {'idle min/last':>13} {'slow':>4} {'guesses 401/429':>15} "
    f"{'rss MiB':>8} {'peak':>6} {'fds':>5} {'peak':>5}"
)


def row(index: int, window: Window) -> str:
    seconds = window.ended - window.started
    idle, slow, guesses = "-", "-", "-"
    if window.attack:
        # Held once ramped up (from the first second the most were open), before the stop.
        running = [line for line in window.attack if not line["final"]] or window.attack
        held = [line["idle_held"] for line in running]
        ramped = held[held.index(max(held)) :]
        idle = f"{min(ramped)}/{held[-1]}"
        slow = str(running[-1]["slow_held"])
        answered = window.attack[-1]["guesses"]
        guesses = f"{answered.get('401', 0)}/{answered.get('429', 0)}"
    note = "" if window.settled else "  (the edge kept the attackers' fds)"
    return (
        f"{index:>3} {window.phase:<7} {seconds:>5.1f} {window.requests:>6} "
        f"{window.requests / seconds:>6.1f} {percentile(window.latencies, 0.5):>7.1f} "
        f"{percentile(window.latencies, 0.99):>7.1f} {sum(window.errors.values()):>6} "
        f"{idle:>13} {slow:>4} {guesses:>15} {window.rss_mib:>8.1f} {window.peak_rss_mib:>6.1f} "
        f"{window.fds:>5} {window.peak_fds:>5}{note}"
    )


def raise_open_files_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        soft = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft != resource.RLIM_INFINITY and soft < needed:
        raise SystemExit(f"the open-files limit is {soft}: this bench needs {needed}")


def summarize(windows: list[Window], pid: int, edge_log: str) -> str:
    phases = {
        phase: [x for w in windows if w.phase == phase for x in w.latencies]
        for phase in ("without", "with")
    }
    p99_without = percentile(phases["without"], 0.99)
    p99_with = percentile(phases["with"], 0.99)
    errors: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for window in windows:
        errors += window.errors
        kinds += window.kinds
    growth = windows[-1].rss_mib - windows[0].rss_mib
    print(
        f"ordinary requests: {dict(kinds)}; p50 without {percentile(phases['without'], 0.5):.1f} "
        f"ms, with {percentile(phases['with'], 0.5):.1f} ms; p99 without {p99_without:.1f} ms, "
        f"with {p99_with:.1f} ms"
    )
    if errors:
        print(f"errors: {dict(errors)}")
    firsts = [w for w in windows if w.phase == "with"][:1]
    if firsts:
        print(
            f"edge RSS: {windows[0].rss_mib:.1f} MiB after the warm-up, "
            f"{firsts[0].rss_mib:.1f} after the first attack, {windows[-1].rss_mib:.1f} at the end"
        )
    attacked = [w.attack[-1] for w in windows if w.attack]
    if attacked:
        totals = {
            name: sum(line[name] for line in attacked) // len(attacked)
            for name in ("idle_reopened", "idle_refused", "slow_reopened", "connect_failures")
        }
        print(f"attackers, per window with them (mean): {totals}")
    tracebacks = edge_log.count("Traceback")
    warnings = [line for line in edge_log.splitlines() if "WARNING" in line or "ERROR" in line]
    print(f"edge log: {tracebacks} tracebacks, {len(warnings)} warning/error lines")
    for line in sorted(set(line[:160] for line in warnings))[:8]:
        print(f"  {line}")
    return (
        f"RESULT p99_ms={p99_with:.1f} p99_ratio={p99_with / p99_without:.2f} "
        f"errors={sum(errors.values())} rss_growth_mb={growth:.1f}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--window", type=float, default=30.0, help="seconds of each window")
    p.add_argument("--idle", type=int, default=1000)
    p.add_argument("--slow", type=int, default=10)
    p.add_argument("--guessers", type=int, default=5)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--warmup", type=float, default=10.0, help="seconds before the RSS baseline")
    args = p.parse_args()
    attack_sockets = args.idle + args.slow + args.guessers
    raise_open_files_limit(attack_sockets + 256)

    data = tempfile.TemporaryDirectory()
    simulator = Simulator()
    cluster = Cluster(
        Path(data.name),
        simulator,
        env={"NEXTAPI_DEFAULT_RATE_LIMIT": UNLIMITED, "NEXTAPI_LOG_LEVEL": "warning"},
    )
    try:
        edge_url = cluster.edge()
        key = cluster.customer(credits=10**15)
        pid = cluster.edges[0].proc.pid
        limit = open_files_limit(pid)
        print(f"edge pid {pid}, open files limit {limit}; load average {os.getloadavg()[0]:.2f}")
        if limit < attack_sockets + 256:
            raise SystemExit(f"the edge's open-files limit {limit} is below the attack's")
        wait_for_key(edge_url, key)
        print(HEADER, flush=True)
        windows = asyncio.run(soak(args, edge_url, key, pid))
        edge_log = cluster.edges[0].output()
    finally:
        cluster.stop()
        simulator.stop()
        data.cleanup()
    result = summarize(windows, pid, edge_log)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    print(result, flush=True)


def wait_for_key(edge_url: str, key: str, timeout: float = 30.0) -> None:
    """The edge apart learns of a new key from the control plane's snapshot: wait for it."""
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {key}"}
    while True:
        answer = httpx.get(f"{edge_url}/api/v3{TASKS}", headers=headers, timeout=10)
        if answer.status_code == 200:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"the edge does not take the new key: {answer.status_code}")
        time.sleep(0.2)


if __name__ == "__main__":
    main()
