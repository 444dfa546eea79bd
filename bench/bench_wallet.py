"""What a create's hold costs the control plane, for an org with a long ledger and a new one.

    .venv/bin/python bench/bench_wallet.py [--entries 200000] [--holds 2000]

Every create reserves its most possible cost in one write transaction (control/store/wallet.py),
against the org's balance and its monthly spend limit. The balance is one row kept as the ledger
is written (`ledger_totals`); the spend limit reads the month's charges off an index. So a hold
for an org with `--entries` ledger charges over two years should cost what it costs for an org
with one grant, but for the spend limit's read of this month's charges (a twenty-fourth of
them here; about 0.1 ms a thousand): the bench reserves and releases `--holds` holds for each,
alternating, and prints the ratio of their medians (target: about 1). Side by side, on the same
file, it times the read the balance used to be (the sum of the org's whole ledger) against the
row it is now.

Ends with one line `RESULT name=value …`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from control.store import db as dbm  # noqa: E402
from control.store.state import ControlState  # noqa: E402
from control.store.wallet import DatabaseWallet  # noqa: E402
from proxy.core.wallet import Hold  # noqa: E402

DAY = 86400
LONG, NEW = "org_long", "org_new"
LIMIT = json.dumps({"amount": 10**18, "period": "month"})  # read on every hold, never reached


async def seed(state: ControlState, entries: int) -> None:
    now = time.time()
    db = state.db
    await db.execute("BEGIN")
    for org_id in (LONG, NEW):
        await db.execute(
            "INSERT INTO orgs (id, name, email, spend_limit, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (org_id, org_id, f"{org_id}@example.com", LIMIT, now, now),
        )
        await db.execute(
            "INSERT INTO api_keys (id, org_id, name, environment, secret_hash, created_at, "
            "updated_at) VALUES (?, ?, 'k', 'live', 'x', ?, ?)",
            (f"key_{org_id}", org_id, now, now),
        )
        await db.execute(
            "INSERT INTO ledger (org_id, kind, amount, reason, actor, created_at) "
            "VALUES (?, 'grant', ?, 'bench', 'bench', ?)",
            (org_id, 10**15, now - 730 * DAY),
        )
    span = 730 * DAY / entries
    await db.executemany(  # two years of charges, one every few minutes
        "INSERT INTO ledger (org_id, key_id, kind, amount, task_id, actor, created_at) "
        "VALUES (?, ?, 'charge', ?, ?, 'system:billing', ?)",
        [
            (LONG, f"key_{LONG}", -(1000 + i % 997), f"cgt-{i}", now - 730 * DAY + i * span)
            for i in range(entries)
        ],
    )
    await db.execute("COMMIT")


async def holds(wallet: DatabaseWallet, org_id: str, n: int, tag: str) -> list[float]:
    """Seconds each reserve of `n` took (each released at once, so the holds do not pile up)."""
    took = []
    for i in range(n):
        hold = Hold(f"req-{tag}-{i}", org_id, f"key_{org_id}", 1_000_000, "m", "default")
        started = time.perf_counter()
        refusal = await wallet.reserve(hold)
        took.append(time.perf_counter() - started)
        assert refusal is None, refusal
        await wallet.release(hold.request_id)
    return took


async def reads(state: ControlState, sql: str, n: int) -> float:
    """The median seconds of `sql` (on LONG), `n` times."""
    took = []
    for _ in range(n):
        started = time.perf_counter()
        await dbm.fetch_one(state.db, sql, LONG)
        took.append(time.perf_counter() - started)
    return statistics.median(took)


async def main(entries: int, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        state = await ControlState.open(Path(tmp))
        try:
            await seed(state, entries)
            wallet = DatabaseWallet(state)
            long_took: list[float] = []
            new_took: list[float] = []
            for round_ in range(4):  # alternating, so drift hits both alike
                long_took += await holds(wallet, LONG, n // 4, f"l{round_}")
                new_took += await holds(wallet, NEW, n // 4, f"n{round_}")
            long_ms = statistics.median(long_took) * 1000
            new_ms = statistics.median(new_took) * 1000
            summed = await reads(
                state, "SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE org_id=?", 50
            )
            kept = await reads(state, "SELECT total FROM ledger_totals WHERE org_id=?", 50)
            balance = await wallet.balance(LONG)
        finally:
            await state.close()
    ratio = long_ms / new_ms
    print(f"a hold (reserve, in its write transaction), median of {n // 4 * 4} each:")
    print(f"  org with {entries:,} ledger entries: {long_ms:.3f} ms")
    print(f"  org with one grant:                {new_ms:.3f} ms")
    print(f"  ratio {ratio:.2f} (target about 1: only this month's charges are read)")
    print(
        f"the org's ledger total: summed over its entries {summed * 1000:.3f} ms, "
        f"kept as a row {kept * 1000:.3f} ms (ratio {summed / kept:.0f})"
    )
    assert balance["available"] > 0, balance
    print(
        f"RESULT entries={entries} holds={n // 4 * 4} hold_long_ms={long_ms:.3f} "
        f"hold_new_ms={new_ms:.3f} hold_ratio={ratio:.2f} "
        f"sum_read_ms={summed * 1000:.3f} row_read_ms={kept * 1000:.3f} "
        f"sum_over_row={summed / kept:.0f}"
    )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--entries", type=int, default=200_000)
    p.add_argument("--holds", type=int, default=2000)
    args = p.parse_args()
    asyncio.run(main(args.entries, args.holds))
