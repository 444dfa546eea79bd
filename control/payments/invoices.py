"""Stripe's invoices of an org's payments, kept here with the ledger (billing records: 7 years,
control/jobs/retention.py) and listed to its admins and to the org itself, JSON or CSV.

`invoice.finalized` and `invoice.paid` may come in either order: a status only moves forward
(draft, open, then paid, void or uncollectible), so a late `finalized` never reopens a paid one.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from control.http import rfc3339
from control.payments import fields, money
from control.payments.history import org_rows
from control.payments.purchases import STRIPE
from control.store import db as dbm
from control.store.state import ControlState

RANK = {"draft": 0, "open": 1, "paid": 2, "void": 2, "uncollectible": 2}
COLUMNS = [
    "id",
    "number",
    "amount",
    "currency",
    "amount_display",
    "status",
    "hosted_invoice_url",
    "invoice_pdf",
    "issued_at",
    "updated_at",
]


async def seen(state: ControlState, tx: Any, invoice: dict[str, Any], now: float) -> str:
    """Keeps (or moves forward) the invoice; its org is the one its metadata names, or the
    org whose Stripe customer it bills."""
    invoice_id = fields.text(invoice.get("id"))
    if invoice_id is None:
        return "ignored: no invoice id"
    org_id = await _org_of(tx, invoice)
    if org_id is None:
        await state.audit(tx, STRIPE, "invoice.unknown_org", None, {"invoice": invoice_id})
        return "ignored: no org"
    currency = str(invoice.get("currency") or "").lower()
    try:
        money.exponent(currency)
    except money.MoneyError:
        return f"ignored: currency {currency!r}"
    status = str(invoice.get("status") or "open")
    totals = (invoice.get(name) for name in ("total", "amount_due", "amount_paid"))
    amount = next((found for value in totals if (found := fields.integer(value)) is not None), 0)
    created = invoice.get("created")
    issued_at = float(created) if isinstance(created, int | float) else now
    before = await dbm.fetch_one(tx, "SELECT status FROM invoices WHERE id=?", invoice_id)
    if before is not None and RANK.get(before["status"], 0) > RANK.get(status, 0):
        status = before["status"]
    await tx.execute(
        "INSERT INTO invoices (id, org_id, number, amount, currency, status, hosted_url, pdf_url, "
        "issued_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE "
        "SET number=COALESCE(excluded.number, invoices.number), amount=excluded.amount, "
        "status=excluded.status, hosted_url=COALESCE(excluded.hosted_url, invoices.hosted_url), "
        "pdf_url=COALESCE(excluded.pdf_url, invoices.pdf_url), updated_at=excluded.updated_at",
        (
            invoice_id,
            org_id,
            fields.text(invoice.get("number")),
            amount,
            currency,
            status,
            fields.text(invoice.get("hosted_invoice_url")),
            fields.text(invoice.get("invoice_pdf")),
            issued_at,
            now,
        ),
    )
    return status


async def _org_of(tx: Any, invoice: dict[str, Any]) -> str | None:
    named = fields.text(fields.metadata(invoice).get("org_id"))
    if named is not None:
        row = await dbm.fetch_one(tx, "SELECT id FROM orgs WHERE id=?", named)
        if row is not None:
            return row["id"]
    customer = fields.text(invoice.get("customer"))
    if customer is not None:
        row = await dbm.fetch_one(
            tx, "SELECT org_id FROM billing_accounts WHERE customer_id=?", customer
        )
        if row is not None:
            return row["org_id"]
    return None


def invoice_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "number": row["number"],
        "amount": row["amount"],
        "currency": row["currency"],
        "amount_display": money.label(row["amount"], row["currency"]),
        "status": row["status"],
        "hosted_invoice_url": row["hosted_url"],
        "invoice_pdf": row["pdf_url"],
        "issued_at": rfc3339(row["issued_at"]),
        "updated_at": rfc3339(row["updated_at"]),
    }


async def list_invoices(request: Request) -> Response:
    """The org's invoices from Stripe, newest first (CSV: every page)."""
    return await org_rows(
        request, "invoices", invoice_json, COLUMNS, "invoices", ("issued_at", "id")
    )
