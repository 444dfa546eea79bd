"""The wallet's calls about tasks rather than money: which org owns a task, its video copies
gone, an org's recent tasks, the tasks still holding credits, and the Idempotency-Keys of
creates (control/store/idempotency.py). The base of DatabaseWallet (control/store/wallet.py),
which edges call for both through one protocol (proxy/core/wallet.py)."""

from __future__ import annotations

from collections.abc import Callable

from control.store import db as dbm
from control.store import idempotency
from control.store.state import ControlState
from proxy.core.idempotency import Claim


class TaskRecords:
    state: ControlState
    clock: Callable[[], float]

    # --- ownership -----------------------------------------------------------------------------

    async def owner(self, task_id: str) -> str | None:
        row = await dbm.fetch_one(self.state.db, "SELECT org_id FROM tasks WHERE id=?", task_id)
        return row["org_id"] if row is not None else None

    async def video_deleted(self, task_id: str) -> None:
        async with self.state.transaction() as tx:
            await tx.execute(
                "UPDATE tasks SET video_deleted_at=? WHERE id=? AND video_deleted_at IS NULL",
                (self.clock(), task_id),
            )

    async def org_tasks(self, org_id: str, since: float, limit: int = 500) -> list[str]:
        rows = await dbm.fetch_all(
            self.state.db,
            "SELECT id FROM tasks WHERE org_id=? AND created_at>=? "
            "ORDER BY created_at DESC, id DESC LIMIT ?",
            org_id,
            since,
            limit,
        )
        return [row["id"] for row in rows]

    async def unsettled_tasks(self, limit: int = 1000) -> list[str]:
        rows = await dbm.fetch_all(
            self.state.db,
            "SELECT task_id FROM reservations WHERE status='held' AND task_id IS NOT NULL "
            "ORDER BY created_at LIMIT ?",
            limit,
        )
        return [row["task_id"] for row in rows]

    # --- Idempotency-Key (control/store/idempotency.py) -----------------------------------

    async def idempotency_claim(self, org_id: str, key: str, digest: str, request_id: str) -> Claim:
        return await idempotency.claim(self.state, org_id, key, digest, request_id, self.clock())

    async def idempotency_finish(
        self, org_id: str, key: str, request_id: str, status: int, body: bytes
    ) -> None:
        await idempotency.finish(self.state, org_id, key, request_id, status, body)

    async def idempotency_release(self, org_id: str, key: str, request_id: str) -> None:
        await idempotency.release(self.state, org_id, key, request_id)
