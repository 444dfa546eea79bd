"""The request log's ingest on PostgreSQL: `executemany` of `INSERT … ON CONFLICT DO NOTHING`
(what control/api/usage.py did; psycopg pipelines the rows) against the seam's `insert_new`
(what it does: `COPY` into a temporary staging table and one `INSERT … SELECT … ON CONFLICT DO
NOTHING`, control/store/postgres.py), in batches of 1000 as the spool ingestor sends them, each
batch a transaction, alternating, into one fresh database.

    NEXTAPI_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432 \\
        .venv/bin/python bench/bench_pg_ingest.py [--batches 50] [--rounds 3]

Ends with one line `RESULT executemany_rows_s=… copy_rows_s=…` (the medians of the rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from control.store import db as dbm
from control.store.partitions import DayPartitions
from control.store.postgres import PostgresDatabase
from proxy.core.usage_records import FIELDS
from tests import postgres

BATCH = 1000
T0 = 1.9e9  # the records' times: T0 + n seconds
INSERT = (
    f"INSERT INTO usage ({', '.join(FIELDS)}) VALUES ({', '.join('?' for _ in FIELDS)}) "
    "ON CONFLICT DO NOTHING"
)


def batch_rows(tag: str) -> list[tuple[Any, ...]]:
    rows = []
    for n in range(BATCH):
        record = {
            "request_id": f"req_{tag}_{n}",
            "ts": T0 + n,
            "org_id": f"org_{n % 100}",
            "key_id": f"key_{n % 300}",
            "method": "GET",
            "route": "GET /api/v3/contents/generations/tasks/{id}",
            "status": 200,
            "latency_ms": 12.5 + n % 50,
            "upstream_latency_ms": 10.0,
            "bytes_in": 10,
            "bytes_out": 20,
            "credits": 0,
            "model": "seedance-1-0-pro",
        }
        rows.append(tuple(record.get(field) for field in FIELDS))
    return rows


async def rate(db: PostgresDatabase, how: str, batches: int, round_: int) -> float:
    prepared = [batch_rows(f"{how}{round_}_{b}") for b in range(batches)]
    started = time.perf_counter()
    for rows in prepared:
        async with db.transaction() as tx:
            if how == "copy":
                await tx.insert_new("usage", FIELDS, rows)
            else:
                await tx.executemany(INSERT, rows)
    return batches * BATCH / (time.perf_counter() - started)


async def main(batches: int, rounds: int) -> None:
    with postgres.fresh_database() as url:
        db = await dbm.open_database(url)
        assert isinstance(db, PostgresDatabase)
        # The records' days made, as ingest makes them (control/api/usage.py): into a day's
        # partition, not the default one.
        await DayPartitions(db).ensure([T0, T0 + BATCH])
        rates: dict[str, list[float]] = {"executemany": [], "copy": []}
        try:
            for round_ in range(rounds):
                for how, found in rates.items():
                    found.append(await rate(db, how, batches, round_))
                    print(f"round {round_ + 1} {how}: {found[-1]:,.0f} rows/s")
        finally:
            await db.close()
    medians = {how: statistics.median(found) for how, found in rates.items()}
    print(" ".join(["RESULT", *(f"{how}_rows_s={v:.0f}" for how, v in medians.items())]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.batches, arguments.rounds))
