"""The control plane's record of `Idempotency-Key`s (see proxy/core/idempotency.py): one row
per org and key with the hash of the body and, once the create answered, its status and body.

A create whose edge died after the upstream accepted it is still answered: its reservation
knows the task id. One that never reached an answer (no task id after the hold's own crash
timeout) gives its key to the next attempt."""

from __future__ import annotations

import json

from control.store import db as dbm
from control.store.database import Queries
from control.store.state import ControlState
from proxy.core.idempotency import IN_PROGRESS, MISMATCH, NEW, REPLAY, TTL_SECONDS, Claim

ABANDONED_SECONDS = 300.0  # as control/store/wallet.py's HOLD_SECONDS: the create never answered


async def claim(
    state: ControlState, org_id: str, key: str, digest: str, request_id: str, now: float
) -> Claim:
    async with state.transaction() as tx:
        # Claimed by its unique key: of two creates with one key at once (on two control
        # planes), one inserts; the other waits for it and reads its row, locked.
        claimed = await tx.execute(
            "INSERT INTO idempotency_keys (org_id, key, body_hash, request_id, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (org_id, key, digest, request_id, now),
        )
        if claimed.rowcount == 1:
            return Claim(NEW)
        row = await dbm.fetch_one(
            tx,
            f"SELECT * FROM idempotency_keys WHERE org_id=? AND key=?{tx.dialect.for_update}",
            org_id,
            key,
        )
        if row is None:  # released between the two statements: the client asks again
            return Claim(IN_PROGRESS)
        if row["created_at"] < now - TTL_SECONDS:  # expired: the key starts over, as new
            await tx.execute(
                "UPDATE idempotency_keys SET body_hash=?, request_id=?, created_at=?, "
                "status=NULL, response=NULL WHERE org_id=? AND key=?",
                (digest, request_id, now, org_id, key),
            )
            return Claim(NEW)
        if row["body_hash"] != digest:
            return Claim(MISMATCH)
        if row["request_id"] == request_id and row["status"] is None:
            return Claim(NEW)  # the same create asking again (its edge failed over): its own
        if row["status"] is not None:
            return Claim(REPLAY, row["status"], bytes(row["response"]))
        hold = await dbm.fetch_one(
            tx, "SELECT task_id FROM reservations WHERE id=?", row["request_id"]
        )
        if hold is not None and hold["task_id"]:
            body = json.dumps({"id": hold["task_id"]}).encode()
            await _finish(tx, org_id, key, row["request_id"], 200, body)
            return Claim(REPLAY, 200, body)
        if row["created_at"] < now - ABANDONED_SECONDS:
            await tx.execute(
                "UPDATE idempotency_keys SET request_id=?, created_at=? WHERE org_id=? AND key=?",
                (request_id, now, org_id, key),
            )
            return Claim(NEW)
        return Claim(IN_PROGRESS)


async def _finish(
    tx: Queries, org_id: str, key: str, request_id: str, status: int, body: bytes
) -> None:
    await tx.execute(
        "UPDATE idempotency_keys SET status=?, response=? "
        "WHERE org_id=? AND key=? AND request_id=?",
        (status, body, org_id, key, request_id),
    )


async def finish(
    state: ControlState, org_id: str, key: str, request_id: str, status: int, body: bytes
) -> None:
    """The create answered with a task: later uses of the key replay this answer."""
    async with state.transaction() as tx:
        await _finish(tx, org_id, key, request_id, status, body)


async def release(state: ControlState, org_id: str, key: str, request_id: str) -> None:
    """The create made no task (refused, or failed upstream): the key is free again."""
    async with state.transaction() as tx:
        await tx.execute(
            "DELETE FROM idempotency_keys WHERE org_id=? AND key=? AND request_id=? "
            "AND status IS NULL",
            (org_id, key, request_id),
        )
