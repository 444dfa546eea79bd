"""Disputes (chargebacks): an open one suspends its org's creates (control/store/wallet.py
refuses their holds), closing it lifts that; a lost one takes back the disputed share of the
payment's credits. A dispute closed is never reopened by a late `created` event."""

from __future__ import annotations

from typing import Any

from control.http import rfc3339
from control.payments import fields, purchases
from control.payments.purchases import STRIPE
from control.store import db as dbm
from control.store.state import ControlState

CLOSED = frozenset({"won", "lost", "warning_closed", "prevented"})


async def opened(state: ControlState, tx: Any, dispute: dict[str, Any], now: float) -> str:
    return await _seen(state, tx, dispute, now, closing=False)


async def closed(state: ControlState, tx: Any, dispute: dict[str, Any], now: float) -> str:
    return await _seen(state, tx, dispute, now, closing=True)


async def _seen(
    state: ControlState, tx: Any, dispute: dict[str, Any], now: float, *, closing: bool
) -> str:
    dispute_id = fields.text(dispute.get("id"))
    if dispute_id is None:
        return "ignored: no dispute id"
    intent = fields.text(dispute.get("payment_intent"))
    status = fields.text(dispute.get("status")) or ("lost" if closing else "needs_response")
    if closing and status not in CLOSED:
        status = "lost"  # closed with a status Stripe added since: the money did not come back
    payment = await dbm.fetch_one(tx, "SELECT org_id FROM payments WHERE payment_intent=?", intent)
    org_id = payment["org_id"] if payment is not None else None
    before = await dbm.fetch_one(tx, "SELECT * FROM disputes WHERE id=?", dispute_id)
    if before is not None and before["closed_at"] is not None:
        return "already closed"
    amount = fields.integer(dispute.get("amount")) or 0
    currency = (fields.text(dispute.get("currency")) or "").lower()
    closed_at = now if closing else None
    await tx.execute(
        "INSERT INTO disputes (id, payment_intent, charge_id, org_id, amount, currency, status, "
        "opened_at, closed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET status=excluded.status, closed_at=excluded.closed_at, "
        "org_id=COALESCE(disputes.org_id, excluded.org_id), updated_at=excluded.updated_at",
        (
            dispute_id,
            intent,
            fields.text(dispute.get("charge")),
            org_id,
            amount,
            currency,
            status,
            now,
            closed_at,
            now,
        ),
    )
    action = f"org.dispute_{status}" if closing else "org.dispute_opened"
    detail = {"dispute": dispute_id, "payment_intent": intent, "amount": amount}
    await state.audit(tx, STRIPE, action, org_id, detail)
    if closing and status == "lost" and intent:
        await purchases.take_back(state, tx, intent, now)
    return status


def dispute_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "payment_intent": row["payment_intent"],
        "charge": row["charge_id"],
        "amount": row["amount"],
        "currency": row["currency"],
        "status": row["status"],
        "opened_at": rfc3339(row["opened_at"]),
        "closed_at": rfc3339(row["closed_at"]),
    }


async def open_for(db: Any, org_id: str) -> int:
    """How many disputes of the org are open."""
    row = await dbm.fetch_one(
        db, "SELECT COUNT(*) AS n FROM disputes WHERE org_id=? AND closed_at IS NULL", org_id
    )
    return int(row["n"]) if row is not None else 0
