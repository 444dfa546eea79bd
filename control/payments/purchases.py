"""Payments into the ledger, exactly once: a payment's credits are granted in one `purchase`
entry (the ledger's unique index on payment_id is the last guard), and what Stripe reports
returned of it, refunds and lost disputes, is taken back as `reversal` entries up to that
share. Every function here runs in the caller's transaction, so an event is applied whole with
the claim of its id, or not at all.

Events arrive in any order: a refund or a dispute may come before the payment it belongs to is
known here. They are kept by payment intent, and the grant applies them when it lands; each
step computes what the ledger should hold and writes only the difference, so a replay changes
nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from control.http import rfc3339
from control.payments import money
from control.store import db as dbm
from control.store.state import ControlState
from control.store.wallet import MAX_BALANCE, funds

STRIPE = "stripe"  # the actor of what Stripe's events do


@dataclass(frozen=True, slots=True)
class Paid:
    """What Stripe says was paid: a Checkout Session or an auto-recharge's PaymentIntent."""

    payment_id: str  # the session's id (cs_…), or the recharge's (rch_…)
    amount: int  # minor units
    currency: str
    payment_intent: str | None = None
    org_id: str | None = None  # client_reference_id / metadata, to check against the payment's
    pack_id: str | None = None  # metadata: for a session made elsewhere


def new_recharge_id() -> str:
    return "rch_" + secrets.token_urlsafe(12)


async def record(
    tx: Any, payment_id: str, org_id: str, pack: Any, kind: str, status: str, now: float
) -> None:
    """A payment about to be made, with the pack's figures as sold (a pack repriced later does
    not change what this payment buys)."""
    await tx.execute(
        "INSERT INTO payments (id, org_id, kind, pack_id, credits, amount, currency, "
        "status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        (
            payment_id,
            org_id,
            kind,
            pack["id"],
            pack["credits"],
            pack["amount"],
            pack["currency"],
            status,
            now,
            now,
        ),
    )


async def grant(state: ControlState, tx: Any, paid: Paid, now: float) -> str:
    """Grants the payment's credits unless granted before; returns what happened: `granted`,
    `already`, `mismatch` (amount, currency or org differ from what was sold: audited, nothing
    granted) or `unknown` (no such payment, and no pack to make it from)."""
    payment = await dbm.fetch_one(tx, "SELECT * FROM payments WHERE id=?", paid.payment_id)
    if payment is None:
        payment = await _adopt(tx, paid, now)
        if payment is None:
            await state.audit(
                tx, STRIPE, "payment.unknown", paid.org_id, {"payment": paid.payment_id}
            )
            return "unknown"
    if paid.payment_intent and payment["payment_intent"] is None:
        await tx.execute(
            "UPDATE payments SET payment_intent=?, updated_at=? WHERE id=?",
            (paid.payment_intent, now, payment["id"]),
        )
    if payment["ledger_id"] is not None:
        return "already"
    if payment["status"] == "mismatch":
        return "mismatch"
    differs = _differs(payment, paid)
    if differs:
        await tx.execute(
            "UPDATE payments SET status='mismatch', error=?, updated_at=? WHERE id=?",
            (differs, now, payment["id"]),
        )
        detail = {"payment": payment["id"], "problem": differs}
        await state.audit(tx, STRIPE, "payment.mismatch", payment["org_id"], detail)
        return "mismatch"
    total, _ = await funds(tx, payment["org_id"])
    if total + payment["credits"] > MAX_BALANCE:
        problem = f"the balance may hold at most {MAX_BALANCE} micro-credits"
        await tx.execute(
            "UPDATE payments SET status='mismatch', error=?, updated_at=? WHERE id=?",
            (problem, now, payment["id"]),
        )
        detail = {"payment": payment["id"], "problem": problem}
        await state.audit(tx, STRIPE, "payment.mismatch", payment["org_id"], detail)
        return "mismatch"
    what = "checkout" if payment["kind"] == "checkout" else "auto-recharge"
    reason = f"Stripe {what} {payment['id']}: {money.label(payment['amount'], payment['currency'])}"
    entry = await tx.fetch_one(
        "INSERT INTO ledger (org_id, kind, amount, reason, actor, payment_id, created_at) "
        "VALUES (?, 'purchase', ?, ?, ?, ?, ?) RETURNING id",
        payment["org_id"],
        payment["credits"],
        reason,
        STRIPE,
        payment["id"],
        now,
    )
    assert entry is not None
    await tx.execute(
        "UPDATE payments SET status='paid', ledger_id=?, error=NULL, updated_at=? WHERE id=?",
        (entry["id"], now, payment["id"]),
    )
    detail = {"payment": payment["id"], "credits": payment["credits"]}
    await state.audit(tx, STRIPE, "credits.purchase", payment["org_id"], detail)
    intent = payment["payment_intent"] or paid.payment_intent
    if intent:
        await tx.execute(
            "UPDATE disputes SET org_id=? WHERE payment_intent=? AND org_id IS NULL",
            (payment["org_id"], intent),
        )
        await take_back(state, tx, intent, now)
    return "granted"


async def _adopt(tx: Any, paid: Paid, now: float) -> Any:
    """A paid session this control plane has no record of (made with another tool, or before
    a restore): recorded from its metadata's org and pack, when both exist."""
    if not paid.org_id or not paid.pack_id:
        return None
    pack = await dbm.fetch_one(tx, "SELECT * FROM credit_packs WHERE id=?", paid.pack_id)
    org = await dbm.fetch_one(tx, "SELECT id FROM orgs WHERE id=?", paid.org_id)
    if pack is None or org is None:
        return None
    await record(tx, paid.payment_id, paid.org_id, pack, "checkout", "open", now)
    return await dbm.fetch_one(tx, "SELECT * FROM payments WHERE id=?", paid.payment_id)


def _differs(payment: Any, paid: Paid) -> str | None:
    expected = money.label(payment["amount"], payment["currency"])
    if paid.currency.lower() != payment["currency"] or paid.amount != payment["amount"]:
        try:
            got = money.label(paid.amount, paid.currency)
        except money.MoneyError:  # a currency no pack is sold in: said as Stripe sent it
            got = f"{paid.amount} minor units of {paid.currency!r}"
        return f"paid {got}, sold for {expected}"
    if paid.org_id is not None and paid.org_id != payment["org_id"]:
        return f"paid for org {paid.org_id}, sold to {payment['org_id']}"
    return None


async def refunded(
    state: ControlState, tx: Any, payment_intent: str, amount: int, now: float
) -> int:
    """Stripe's cumulative `amount_refunded` of a payment intent: kept (the largest seen, so an
    older event replayed late changes nothing), then taken back from its payment's credits."""
    largest = tx.dialect.greatest("payment_refunds.refunded", "excluded.refunded")
    await tx.execute(
        "INSERT INTO payment_refunds (payment_intent, refunded, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (payment_intent) DO UPDATE SET "
        f"refunded = {largest}, updated_at = excluded.updated_at",
        (payment_intent, max(amount, 0), now),
    )
    return await take_back(state, tx, payment_intent, now)


async def take_back(state: ControlState, tx: Any, payment_intent: str, now: float) -> int:
    """Brings the payment's reversals up to the share of its credits that Stripe returned
    (refunds and lost disputes); returns the micro-credits taken back by this call. Nothing
    before the payment is granted: the grant calls this again."""
    payment = await dbm.fetch_one(
        tx, "SELECT * FROM payments WHERE payment_intent=?", payment_intent
    )
    if payment is None or payment["ledger_id"] is None:
        return 0
    row = await dbm.fetch_one(
        tx,
        "SELECT COALESCE((SELECT refunded FROM payment_refunds WHERE payment_intent=?), 0) "
        "AS refunded, (SELECT COALESCE(SUM(amount), 0) FROM disputes "
        " WHERE payment_intent=? AND status='lost') AS lost",
        payment_intent,
        payment_intent,
    )
    assert row is not None
    returned = min(int(row["refunded"]) + int(row["lost"]), payment["amount"])
    target = money.credits_for(payment["credits"], returned, payment["amount"])
    delta = target - payment["taken_back"]
    if delta <= 0:
        return 0
    reason = (
        f"Stripe returned {money.label(returned, payment['currency'])} of {payment['id']} "
        f"({money.label(payment['amount'], payment['currency'])})"
    )
    await tx.execute(
        "INSERT INTO ledger (org_id, kind, amount, reason, actor, payment_id, created_at) "
        "VALUES (?, 'reversal', ?, ?, ?, ?, ?)",
        (payment["org_id"], -delta, reason, STRIPE, payment["id"], now),
    )
    await tx.execute(
        "UPDATE payments SET taken_back=?, updated_at=? WHERE id=?", (target, now, payment["id"])
    )
    detail = {"payment": payment["id"], "credits": delta, "returned": returned}
    await state.audit(tx, STRIPE, "credits.reversal", payment["org_id"], detail)
    return delta


def payment_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "kind": row["kind"],
        "pack": row["pack_id"],
        "credits": row["credits"],
        "amount": row["amount"],
        "currency": row["currency"],
        "amount_display": money.label(row["amount"], row["currency"]),
        "status": row["status"],
        "payment_intent": row["payment_intent"],
        "credits_taken_back": row["taken_back"],
        "error": row["error"],
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
    }
