"""Automatic key suspension on abuse signals, judged from the usage records as they arrive
(from every edge alike).

Rule: a key whose requests were refused for its own limits or its org's (a 429 whose record says
`limited_by` key or org, on a verified key) `suspend_after` times or more within the last 10
minutes is suspended. Other 429s never count: the upstream's own (its queue is full for every
customer) and those of the caps that all customers share (a model's, the account's), or anyone
could get an innocent customer suspended by filling them. The suspension and, later,
an admin's unsuspension (PATCH status active) are in the audit log. Wrong secrets are not a
suspension signal: anyone can send them, and suspending the owner's key for them would hand an
attacker a way to switch customers off; they are throttled at the edge instead.
"""

from __future__ import annotations

from typing import Any

from control.store import db as dbm
from control.store.state import ControlState

WINDOW_SECONDS = 600
ACTOR = "system:abuse"


async def suspend_abusers(
    state: ControlState, records: list[dict[str, Any]], suspend_after: int
) -> list[str]:
    """Suspend the keys of this batch that crossed the threshold; returns their ids."""
    if suspend_after <= 0:
        return []
    candidates = {
        r["key_id"]
        for r in records
        if r.get("status") == 429 and r.get("org_id") and r.get("limited_by") is not None
    }
    suspended = []
    since = dbm.now() - WINDOW_SECONDS
    for key_id in sorted(candidates):
        row = await dbm.fetch_one(
            state.log,
            "SELECT COUNT(*) AS refused FROM usage "
            "WHERE key_id=? AND status=429 AND org_id IS NOT NULL AND ts>=? "
            "AND limited_by IS NOT NULL",
            key_id,
            since,
        )
        refused = row["refused"] if row else 0
        if refused < suspend_after:
            continue
        async with state.transaction() as tx:
            cursor = await tx.execute(
                "UPDATE api_keys SET status='suspended', updated_at=? "
                "WHERE id=? AND status='active'",
                (dbm.now(), key_id),
            )
            if cursor.rowcount:
                detail = {
                    "rule": "rate_limited",
                    "refused": refused,
                    "window_seconds": WINDOW_SECONDS,
                }
                await state.audit(tx, ACTOR, "key.suspend", key_id, detail)
                suspended.append(key_id)
    if suspended:
        await state.publish()
    return suspended
