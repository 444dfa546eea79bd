"""Stripe's events, applied to the ledger, the disputes and the invoices; each in the caller's
transaction, which also claims the event's id (control/payments/webhook.py). Returns a word
saying what happened, kept with the claim. Events of other types are acknowledged and left."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from control.payments import disputes, fields, invoices, purchases, recharges
from control.payments.purchases import Paid
from control.store.outbox import Outbox
from control.store.state import ControlState


@dataclass(frozen=True, slots=True)
class Applying:
    """What applying an event may write to: the database (in the caller's transaction) and the
    outbox of the org's own webhook events."""

    state: ControlState
    outbox: Outbox


type Applier = Callable[[Applying, Any, dict[str, Any], float], Awaitable[str]]


async def session_paid(at: Applying, tx: Any, session: dict[str, Any], now: float) -> str:
    """`checkout.session.completed` (paid at once) or `…async_payment_succeeded`: the pack's
    credits, once per session whatever events carry it."""
    if session.get("payment_status") != "paid":
        return "waiting: not paid yet"  # a delayed method: async_payment_succeeded follows
    metadata = fields.metadata(session)
    paid = Paid(
        payment_id=str(session.get("id") or ""),
        amount=fields.integer(session.get("amount_total")) or 0,
        currency=str(session.get("currency") or ""),
        payment_intent=fields.text(session.get("payment_intent")),
        org_id=fields.text(session.get("client_reference_id"))
        or fields.text(metadata.get("org_id")),
        pack_id=fields.text(metadata.get("pack")),
    )
    if not paid.payment_id:
        return "ignored: no session id"
    outcome = await purchases.grant(at.state, tx, paid, now)
    if outcome == "granted" and metadata.get("save_card") == "1" and paid.payment_intent:
        await recharges.card_saved(tx, paid, fields.text(session.get("customer")), now)
    return outcome


async def session_expired(at: Applying, tx: Any, session: dict[str, Any], now: float) -> str:
    """`checkout.session.expired`: the payer never paid; the payment is marked so (a session
    paid meanwhile keeps its grant)."""
    changed = await tx.execute(
        "UPDATE payments SET status='expired', updated_at=? WHERE id=? AND status='open'",
        (now, str(session.get("id") or "")),
    )
    return "expired" if changed.rowcount else "ignored: not open"


async def intent_succeeded(at: Applying, tx: Any, intent: dict[str, Any], now: float) -> str:
    """An auto-recharge's PaymentIntent succeeded: its credits, unless its answer already gave
    them (control/payments/recharges.py). A checkout's intent is the session's business."""
    payment_id = fields.text(fields.metadata(intent).get("payment_id"))
    if payment_id is None or not payment_id.startswith("rch_"):
        return "ignored: not an auto-recharge"
    paid = Paid(
        payment_id=payment_id,
        amount=fields.integer(intent.get("amount_received") or intent.get("amount")) or 0,
        currency=str(intent.get("currency") or ""),
        payment_intent=fields.text(intent.get("id")),
        org_id=fields.text(fields.metadata(intent).get("org_id")),
    )
    return await purchases.grant(at.state, tx, paid, now)


async def intent_failed(at: Applying, tx: Any, intent: dict[str, Any], now: float) -> str:
    payment_id = fields.text(fields.metadata(intent).get("payment_id"))
    if payment_id is None or not payment_id.startswith("rch_"):
        return "ignored: not an auto-recharge"
    error = intent.get("last_payment_error")
    code = fields.text(error.get("code")) if isinstance(error, dict) else None
    return await recharges.failed(
        at.state, tx, payment_id, code or "payment_failed", now, at.outbox
    )


async def charge_refunded(at: Applying, tx: Any, charge: dict[str, Any], now: float) -> str:
    """`charge.refunded`: Stripe's cumulative refunded amount; its share of credits goes."""
    intent = fields.text(charge.get("payment_intent"))
    if intent is None:
        return "ignored: no payment intent"
    refunded = fields.integer(charge.get("amount_refunded")) or 0
    taken = await purchases.refunded(at.state, tx, intent, refunded, now)
    return f"took back {taken}"


HANDLERS: dict[str, Applier] = {
    "checkout.session.completed": session_paid,
    "checkout.session.async_payment_succeeded": session_paid,
    "checkout.session.expired": session_expired,
    "payment_intent.succeeded": intent_succeeded,
    "payment_intent.payment_failed": intent_failed,
    "charge.refunded": charge_refunded,
    "charge.dispute.created": lambda at, tx, obj, now: disputes.opened(at.state, tx, obj, now),
    "charge.dispute.closed": lambda at, tx, obj, now: disputes.closed(at.state, tx, obj, now),
    "invoice.finalized": lambda at, tx, obj, now: invoices.seen(at.state, tx, obj, now),
    "invoice.paid": lambda at, tx, obj, now: invoices.seen(at.state, tx, obj, now),
}


async def apply(at: Applying, tx: Any, event: dict[str, Any], now: float) -> str:
    handler = HANDLERS.get(str(event.get("type")))
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if handler is None:
        return "ignored: type not handled"
    if not isinstance(obj, dict):
        return "ignored: no data.object"
    return await handler(at, tx, obj, now)
