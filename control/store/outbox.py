"""Task events into the webhook outbox (SQLite): one row per event and endpoint, durable before
the caller goes on (the upstream's callback is acknowledged only after), delivered by
control/jobs/delivery.py.

An event is a task's new status. It goes to every enabled endpoint of the task's org subscribed
to that event type, and to the endpoint the task named as its `callback_url` (every status of
that task). Whoever sees the status first (callback, get, reconciler; any edge) enqueues it;
the others change nothing: one event per endpoint, task and status (a unique index).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from control.store import db as dbm
from control.store.database import Queries
from control.store.state import ControlState

EVENT_TYPES = (
    "task.queued",
    "task.running",
    "task.succeeded",
    "task.failed",
    "task.cancelled",
    "task.expired",
)
ALL_TASK_EVENTS = "task.*"
# An org's own events, not a task's: each goes to the endpoints that name it.
ORG_EVENT_TYPES = ("balance.low", "balance.recharge_failed")


def subscribed(events: list[str] | None, event_type: str) -> bool:
    return bool(events) and (ALL_TASK_EVENTS in events or event_type in events)


class Outbox:
    def __init__(
        self,
        state: ControlState,
        wake: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.wake = wake
        self.clock = clock

    async def task_status(self, task: dict[str, Any]) -> int:
        """Enqueue the events of a task object as the upstream showed it; returns how many new
        outbox rows it made (0 when another path was first, or nobody listens)."""
        task_id, status = task.get("id"), task.get("status")
        if not isinstance(task_id, str) or not isinstance(status, str):
            return 0
        event_type = f"task.{status}"
        if event_type not in EVENT_TYPES:
            return 0
        owner = await dbm.fetch_one(
            self.state.db, "SELECT org_id, callback_webhook FROM tasks WHERE id=?", task_id
        )
        if owner is None:
            return 0
        hooks = await dbm.fetch_all(
            self.state.db,
            "SELECT id, events FROM webhooks WHERE org_id=? AND status='enabled'",
            owner["org_id"],
        )
        targets = [
            hook["id"]
            for hook in hooks
            if hook["id"] == owner["callback_webhook"]
            or subscribed(dbm.loads(hook["events"]), event_type)
        ]
        if not targets:
            return 0
        payload = json.dumps(task, separators=(",", ":"), ensure_ascii=False).encode()
        made = 0
        async with self.state.transaction() as tx:
            for webhook_id in targets:
                made += await self._enqueue(
                    tx, webhook_id, owner["org_id"], task_id, event_type, payload
                )
        if made:
            self.wake()
        return made

    async def org_event(
        self, tx: Queries, org_id: str, event_type: str, payload: dict[str, Any]
    ) -> int:
        """Enqueue an org's event (ORG_EVENT_TYPES) in the caller's transaction, to each enabled
        endpoint of the org that names it; the caller wakes the worker (`wake`) once committed.
        Returns how many outbox rows it made."""
        hooks = await dbm.fetch_all(
            tx, "SELECT id, events FROM webhooks WHERE org_id=? AND status='enabled'", org_id
        )
        body = json.dumps(
            {"type": event_type, **payload}, separators=(",", ":"), ensure_ascii=False
        ).encode()
        made = 0
        for hook in hooks:
            if event_type in (dbm.loads(hook["events"]) or ()):
                made += await self._enqueue(tx, hook["id"], org_id, None, event_type, body)
        return made

    async def _enqueue(
        self,
        tx: Queries,
        webhook_id: str,
        org_id: str,
        task_id: str | None,
        event_type: str,
        payload: bytes,
    ) -> int:
        """One outbox row, due now; a task's event once per endpoint, task and type (the unique
        index: whoever saw the status first). Returns 1 when made."""
        now = self.clock()
        cursor = await tx.execute(
            "INSERT INTO webhook_events (id, webhook_id, org_id, task_id, type, "
            "payload, status, next_attempt_at, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                f"msg_{secrets.token_urlsafe(18)}",
                webhook_id,
                org_id,
                task_id,
                event_type,
                payload,
                now,
                now,
                now,
            ),
        )
        return cursor.rowcount
