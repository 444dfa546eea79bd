"""Cancelling a closed org's tasks upstream: the account is gone, so its queued work should not
run (nor be billed). Seedance cancels a `queued` task on DELETE; a `running` one cannot be
stopped and finishes (it is settled like any other task); that is the "where possible"."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from control.jobs.upstream import UpstreamTasks
from control.store import db as dbm
from control.store.state import ControlState
from control.store.wallet import DatabaseWallet

log = logging.getLogger(__name__)
PARALLEL = 8


async def cancel_in_flight(
    state: ControlState, wallet: DatabaseWallet, canceller: UpstreamTasks | None, org_id: str
) -> dict[str, Any]:
    """Cancel every unfinished task of the org upstream; those cancelled release their credit
    holds. Returns the ids cancelled and the ids left running."""
    rows = await dbm.fetch_all(
        state.db, "SELECT id FROM tasks WHERE org_id=? AND finished_at IS NULL", org_id
    )
    ids = [row["id"] for row in rows]
    if canceller is None or not ids:
        return {"cancelled": [], "left_running": ids}
    gate = asyncio.Semaphore(PARALLEL)

    async def one(task_id: str) -> bool:
        async with gate:
            return await canceller.cancel(task_id)

    taken = await asyncio.gather(*(one(task_id) for task_id in ids))
    cancelled = [task_id for task_id, ok in zip(ids, taken, strict=True) if ok]
    for task_id in cancelled:
        await wallet.settle(task_id, "cancelled", None)
    left = [task_id for task_id, ok in zip(ids, taken, strict=True) if not ok]
    return {"cancelled": cancelled, "left_running": left}
