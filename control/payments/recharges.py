"""Auto-recharge payments in the database: the card a checkout saved, and a recharge that failed
(one `balance.recharge_failed` event, never a retry before the next crossing). The worker that
charges the card is control/payments/recharger.py."""

from __future__ import annotations

from typing import Any

from control.http import rfc3339
from control.payments.purchases import STRIPE, Paid
from control.store import db as dbm
from control.store.outbox import Outbox
from control.store.state import ControlState


async def card_saved(tx: Any, paid: Paid, customer: str | None, now: float) -> None:
    """A paid checkout that kept its card for off-session payments: its payment intent names
    the card (read when a recharge first needs it)."""
    payment = await dbm.fetch_one(tx, "SELECT org_id FROM payments WHERE id=?", paid.payment_id)
    if payment is None:
        return
    await tx.execute(
        "INSERT INTO billing_accounts (org_id, customer_id, card_payment_intent, updated_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (org_id) DO UPDATE SET "
        "customer_id=COALESCE(billing_accounts.customer_id, excluded.customer_id), "
        "card_payment_intent=excluded.card_payment_intent, payment_method=NULL, "
        "updated_at=excluded.updated_at",
        (payment["org_id"], customer, paid.payment_intent, now),
    )


async def failed(
    state: ControlState,
    tx: Any,
    payment_id: str,
    code: str,
    now: float,
    outbox: Outbox | None = None,
) -> str:
    """Marks the recharge failed, once (a later event or answer about it changes nothing), and
    tells the org."""
    changed = await tx.execute(
        "UPDATE payments SET status='failed', error=?, updated_at=? "
        "WHERE id=? AND kind='recharge' AND status IN ('pending', 'sending')",
        (code, now, payment_id),
    )
    if changed.rowcount == 0:
        return "already settled"
    payment = await dbm.fetch_one(tx, "SELECT * FROM payments WHERE id=?", payment_id)
    assert payment is not None
    detail = {"payment": payment_id, "code": code}
    await state.audit(tx, STRIPE, "recharge.failed", payment["org_id"], detail)
    if outbox is not None:
        payload = {
            "org_id": payment["org_id"],
            "payment": payment_id,
            "pack": payment["pack_id"],
            "code": code,
            "created_at": rfc3339(now),
        }
        await outbox.org_event(tx, payment["org_id"], "balance.recharge_failed", payload)
    return "failed"
