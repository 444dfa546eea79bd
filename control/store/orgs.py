"""Orgs' state changes that more than one caller makes: the admin API (control/api/orgs.py)
and the accounts that come from Clerk (control/customers/)."""

from __future__ import annotations

from control.store import db as dbm
from control.store.database import Queries
from control.store.state import ControlState


async def close(state: ControlState, tx: Queries, actor: str, org_id: str) -> bool:
    """Inside `tx`: close the org and revoke its keys, unless it is closed already (by a
    request at the same time): once, with one audit entry. The caller publishes the snapshot
    and cancels the org's tasks once `tx` is committed."""
    closed = dbm.now()
    cursor = await tx.execute(
        "UPDATE orgs SET status='closed', closed_at=?, updated_at=? "
        "WHERE id=? AND status!='closed'",
        (closed, closed, org_id),
    )
    if not cursor.rowcount:
        return False
    await tx.execute(
        "UPDATE api_keys SET status='revoked', revoked_at=?, updated_at=? "
        "WHERE org_id=? AND status!='revoked'",
        (closed, closed, org_id),
    )
    await state.audit(tx, actor, "org.close", org_id)
    return True
