"""What happens when the edge sees a task's status (a get, a callback, the reconciler): a task
that ended frees its concurrency slots and is settled in the ledger, exactly once whichever path
sees the end first."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from proxy.core.wallet import EventSink, Wallet
from proxy.limits.concurrency import ConcurrencyStore

log = logging.getLogger(__name__)
TERMINAL = frozenset({"succeeded", "failed", "cancelled", "expired"})
OWNERS_CACHED = 100_000


class TaskWatch:
    def __init__(
        self, counters: ConcurrencyStore, wallet: Wallet | None, events: EventSink | None = None
    ) -> None:
        self.counters = counters
        self.wallet = wallet
        self.events = events
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._statuses: OrderedDict[str, str] = OrderedDict()
        self._settled: OrderedDict[str, None] = OrderedDict()

    async def seen(self, task: dict[str, Any]) -> int | None:
        """A task object as the upstream showed it. Returns the credits charged if this call
        settled it."""
        task_id, status = task.get("id"), task.get("status")
        if not isinstance(task_id, str) or not isinstance(status, str):
            return None
        if status not in TERMINAL:
            # Polls repeat the same status many times: the outbox and the ledger hear only of a
            # change (another edge may tell them too; they keep one event per status).
            if self._statuses.get(task_id) != status:
                if self.events is not None:
                    await self.events.task_status(task)
                if self.wallet is not None:
                    await self.wallet.settle(task_id, status, None)  # records the status only
                self._statuses[task_id] = status
                self._statuses.move_to_end(task_id)
                while len(self._statuses) > OWNERS_CACHED:
                    self._statuses.popitem(last=False)
            return None
        self._statuses.pop(task_id, None)
        if task_id in self._settled:
            return None
        if self.events is not None:
            await self.events.task_status(task)  # durable before anything acknowledges it
        await self.counters.release_task(task_id)
        charged = None
        if self.wallet is not None:
            usage = task.get("usage") or {}
            tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
            tokens = tokens if isinstance(tokens, int) else 0
            charged = await self.wallet.settle(task_id, status, tokens)
        # Only once the ledger took it: a failed settlement is tried again on the next sight.
        self._mark_settled(task_id)
        return charged

    async def gone(self, task_id: str, status: str = "cancelled") -> None:
        """The task was cancelled or deleted: nothing more will run or be charged."""
        await self.counters.release_task(task_id)
        if self.wallet is not None:
            await self.wallet.settle(task_id, status, None)
        self._mark_settled(task_id)

    def settled(self, task_id: str) -> bool:
        """Seen ended by this edge (others may have settled it too: settlement is idempotent)."""
        return task_id in self._settled

    def _mark_settled(self, task_id: str) -> None:
        self._settled[task_id] = None
        self._settled.move_to_end(task_id)
        while len(self._settled) > OWNERS_CACHED:
            self._settled.popitem(last=False)

    # --- ownership -----------------------------------------------------------------------------

    def remember(self, task_id: str, org_id: str) -> None:
        self._owners[task_id] = org_id
        self._owners.move_to_end(task_id)
        while len(self._owners) > OWNERS_CACHED:
            self._owners.popitem(last=False)

    async def owner(self, task_id: str) -> str | None:
        """The org a task belongs to (tasks never change owner, so the cache is never stale)."""
        org_id = self._owners.get(task_id)
        if org_id is None and self.wallet is not None:
            org_id = await self.wallet.owner(task_id)
            if org_id is not None:
                self.remember(task_id, org_id)
        return org_id
