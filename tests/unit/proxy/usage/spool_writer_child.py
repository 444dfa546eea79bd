"""Child process for the spool crash test: writes usage records until it is killed.

Prints `D <request_id>` after each append_durable returned (the record is acknowledged as on disk)
and `N <request_id>` after each plain append (buffered only). Run from the repository root as
`python -m tests.unit.proxy.usage.spool_writer_child DIRECTORY WRITERS DURABLE_LIMIT`;
with DURABLE_LIMIT > 0 the durable writers stop after that many acknowledgements in total and only
plain appends continue (so a kill then shows what the flush interval may lose).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from proxy.usage.spool import Spool

SAFETY_TIMEOUT = 30.0  # the parent kills us long before this


def record(request_id: str) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "ts": time.time(),
        "org_id": "org_crash",
        "key_id": "key_crash",
        "method": "POST",
        "route": "/api/v3/contents/generations/tasks",
        "status": 200,
        "latency_ms": 12.5,
        "upstream_latency_ms": 10.0,
        "bytes_in": 512,
        "bytes_out": 256,
        "credits": 3,
        "model": "seedance-1-0-pro",
        "task_id": None,
        "limited_by": None,
    }


async def durable_writer(spool: Spool, worker: int, out: Any, limit: list[int]) -> None:
    for n in range(10**9):
        if limit[0] <= 0:
            return
        request_id = f"d-{worker}-{n}"
        await spool.append_durable(record(request_id))
        limit[0] -= 1
        out.write(f"D {request_id}\n")
        out.flush()


async def plain_writer(spool: Spool, out: Any) -> None:
    for n in range(10**9):
        request_id = f"n-{n}"
        spool.append(record(request_id))
        out.write(f"N {request_id}\n")
        if n % 20 == 19:
            out.flush()
            await asyncio.sleep(0.001)


async def main(directory: Path, writers: int, durable_limit: int) -> None:
    spool = Spool(directory, flush_interval=0.05)
    await spool.start()
    out = sys.stdout
    out.write("READY\n")
    out.flush()
    limit = [durable_limit if durable_limit > 0 else 10**12]  # shared countdown
    tasks = [asyncio.create_task(durable_writer(spool, i, out, limit)) for i in range(writers)]
    tasks.append(asyncio.create_task(plain_writer(spool, out)))
    await asyncio.sleep(SAFETY_TIMEOUT)
    for task in tasks:
        task.cancel()
    sys.exit(3)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
