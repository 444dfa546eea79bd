"""The attackers of bench/bench_soak.py, in a process of their own (so that their work never runs
on the event loop that times the ordinary requests):

    .venv/bin/python bench/attackers.py --edge 127.0.0.1:PORT --key-id ID [--environment live]
        [--idle 1000] [--slow 10] [--guessers 5]

- idle holders: TCP connections that send nothing, at most PER_ADDRESS from each of 127.0.0.2,
  127.0.0.3, … (under the edge's cap of 256 per address); each one the edge closes is reopened;
- slowloris clients, one address each: a request head one byte a second, reopened when closed;
- guessers, one address each: creates and gets with the real key id and a wrong secret (a key
  with a valid checksum, so each counts against that key id), back to back on keep-alive.

Prints one JSON line a second (what is held, reopened and answered so far); on SIGTERM or
SIGINT closes every socket, prints a last line (`"final": true`) and exits 0. Only the key id,
which is not secret, is passed: this process never sees the key.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import signal
import socket
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from proxy.core.keys import format_key, new_secret  # noqa: E402

PER_ADDRESS = 250
TASKS = "/api/v3/contents/generations/tasks"
# A head that never ends: the header value grows a byte a second until the edge closes.
SLOW_HEAD = f"GET {TASKS} HTTP/1.1\r\nHost: edge\r\nX-Slow: ".encode()
CREATE_BODY = json.dumps(
    {"model": "seedance-1-0-pro-250528", "content": [{"type": "text", "text": "guess --dur 2"}]}
).encode()
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux's number


def nth_loopback(n: int) -> str:
    """127.0.0.n for n ≥ 1, carrying into the third octet past 255."""
    return f"127.0.{n // 256}.{n % 256}"


def plan_addresses(idle: int, slow: int, guessers: int) -> tuple[list[str], list[str], list[str]]:
    """The source address of each idle connection, slowloris client and guesser: 127.0.0.1 is
    the ordinary clients' and is never used here."""
    idle_addresses = -(-idle // PER_ADDRESS)
    held = [nth_loopback(2 + i // PER_ADDRESS) for i in range(idle)]
    first_slow = 2 + idle_addresses
    slowloris = [nth_loopback(first_slow + i) for i in range(slow)]
    guessing = [nth_loopback(first_slow + slow + i) for i in range(guessers)]
    return held, slowloris, guessing


@dataclass
class Stats:
    idle_held: int = 0
    idle_reopened: int = 0
    idle_refused: int = 0  # answered (a 503) instead of held: over a cap
    slow_held: int = 0
    slow_reopened: int = 0
    slow_bytes: int = 0
    connect_failures: int = 0
    guesses: Counter[str] = field(default_factory=Counter)  # status: count

    def line(self, final: bool = False) -> str:
        return json.dumps({**self.__dict__, "guesses": dict(self.guesses), "final": final})


async def connected(source: str, edge: tuple[str, int]) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setblocking(False)
        # The port is chosen at connect (by destination too): binding 250 sockets to one
        # address would otherwise take 250 ports of its own from the ephemeral range.
        sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((source, 0))
        await asyncio.get_running_loop().sock_connect(sock, edge)
    except BaseException:
        sock.close()
        raise
    return sock


async def reconnected(source: str, edge: tuple[str, int], stats: Stats) -> socket.socket:
    """A connection from `source`, tried again every 0.5 s while the edge refuses it."""
    while True:
        try:
            return await connected(source, edge)
        except OSError:
            stats.connect_failures += 1
            await asyncio.sleep(0.5)


async def hold_idle(source: str, edge: tuple[str, int], stats: Stats) -> None:
    loop = asyncio.get_running_loop()
    while True:
        sock = await reconnected(source, edge, stats)
        stats.idle_held += 1
        answered = False
        try:
            while await loop.sock_recv(sock, 4096):
                answered = True  # the edge speaks first only to refuse
        except OSError:
            pass
        finally:
            stats.idle_held -= 1
            sock.close()
        stats.idle_reopened += 1
        if answered:
            stats.idle_refused += 1
            await asyncio.sleep(1.0)  # its Retry-After


async def slowloris(source: str, edge: tuple[str, int], stats: Stats) -> None:
    loop = asyncio.get_running_loop()
    while True:
        sock = await reconnected(source, edge, stats)
        stats.slow_held += 1
        sent = 0
        try:
            while True:
                await loop.sock_sendall(sock, SLOW_HEAD[sent : sent + 1] or b"a")
                sent += 1
                stats.slow_bytes += 1
                try:
                    # The pause between bytes, watching for the edge's close.
                    if not await asyncio.wait_for(loop.sock_recv(sock, 4096), 1.0):
                        break
                except TimeoutError:
                    continue
        except OSError:
            pass
        finally:
            stats.slow_held -= 1
            sock.close()
        stats.slow_reopened += 1


def guess(key_id: str, environment: str, rng: random.Random) -> bytes:
    """A create or a get, alternately at random, with a wrong secret for `key_id`."""
    wrong = format_key(environment, key_id, new_secret())  # type: ignore[arg-type]
    auth = f"Authorization: Bearer {wrong}\r\nHost: edge\r\n"
    if rng.random() < 0.5:
        return (
            f"POST {TASKS} HTTP/1.1\r\n{auth}Content-Type: application/json\r\n"
            f"Content-Length: {len(CREATE_BODY)}\r\n\r\n"
        ).encode() + CREATE_BODY
    return f"GET {TASKS}/cgt-20261203000000-guess HTTP/1.1\r\n{auth}\r\n".encode()


async def guesser(
    source: str, edge: tuple[str, int], key_id: str, environment: str, stats: Stats
) -> None:
    rng = random.Random(source)
    while True:
        sock = await reconnected(source, edge, stats)
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            while True:
                writer.write(guess(key_id, environment, rng))
                head = await reader.readuntil(b"\r\n\r\n")
                stats.guesses[head[9:12].decode()] += 1
                length, close = 0, False
                for line in head.lower().split(b"\r\n"):
                    if line.startswith(b"content-length:"):
                        length = int(line[15:])
                    close |= line == b"connection: close"
                await reader.readexactly(length)
                if close:
                    break
        except (OSError, asyncio.IncompleteReadError):
            stats.guesses["closed"] += 1
        finally:
            writer.close()


async def run(args: argparse.Namespace) -> None:
    host, port = args.edge.rsplit(":", 1)
    edge = (host, int(port))
    stats = Stats()
    held, slow, guessing = plan_addresses(args.idle, args.slow, args.guessers)
    workers = [
        *(hold_idle(source, edge, stats) for source in held),
        *(slowloris(source, edge, stats) for source in slow),
        *(guesser(source, edge, args.key_id, args.environment, stats) for source in guessing),
    ]
    tasks = [asyncio.create_task(worker) for worker in workers]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            print(stats.line(), flush=True)
    for task in tasks:
        task.cancel()  # each closes its socket on the way out
    await asyncio.gather(*tasks, return_exceptions=True)
    print(stats.line(final=True), flush=True)


def raise_open_files_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--edge", required=True, help="HOST:PORT")
    p.add_argument("--key-id", required=True)
    p.add_argument("--environment", default="live", choices=("live", "test"))
    p.add_argument("--idle", type=int, default=1000)
    p.add_argument("--slow", type=int, default=10)
    p.add_argument("--guessers", type=int, default=5)
    args: Any = p.parse_args(argv)
    raise_open_files_limit()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
