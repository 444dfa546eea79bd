"""A keep-alive HTTP/1.1 load generator: C connections, each sending GETs back to back for a
fixed time. Prints requests/s and latency percentiles as JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import time


async def connection(
    host: str, port: int, request: bytes, until: float, out: list[float], statuses: dict[int, int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            out.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def run(
    host: str, port: int, path: str, key: str, conns: int, seconds: float, byte_range: str = ""
) -> dict:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        + (f"Authorization: Bearer {key}\r\n" if key else "")
        + (f"Range: {byte_range}\r\n" if byte_range else "")
        + "\r\n"
    ).encode()
    # Warm up (key cache, connection pools), then measure.
    warmup: list[float] = []
    await asyncio.gather(
        *(
            connection(host, port, request, time.perf_counter() + 0.5, warmup, {})
            for _ in range(conns)
        )
    )
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    await asyncio.gather(
        *(
            connection(host, port, request, started + seconds, latencies, statuses)
            for _ in range(conns)
        )
    )
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 3)

    return {
        "requests": len(latencies),
        "warmup_requests": len(warmup),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "statuses": statuses,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/api/v3/contents/generations/tasks")
    p.add_argument("--key", default="")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--range", default="", help="a Range header value, e.g. bytes=0-1048575")
    a = p.parse_args()
    result = run(a.host, a.port, a.path, a.key, a.connections, a.seconds, a.range)
    print(json.dumps(asyncio.run(result)))


if __name__ == "__main__":
    main()
