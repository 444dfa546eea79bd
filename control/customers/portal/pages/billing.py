"""The portal's billing page: the org's balance (available and reserved), the credit packs on
sale (org admins buy one through Stripe's checkout), its payments and Stripe's invoices, its
low-balance alert and auto-recharge (admins set them), its ledger and its generation tasks,
each list paged with its CSV, for every member (the customer API's reads)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from control.customers import routes as me
from control.customers.portal.calls import Visit, customer_page

BILLING = "/portal/billing"
# Each paged list's cursor, in the page's query: a pager keeps the other lists where they are.
CURSORS = ("ledger_cursor", "tasks_cursor", "payments_cursor", "invoices_cursor")
# What `?checkout=` says once Stripe sent the payer back (checkout.RETURN_PATH's outcomes).
CHECKOUT_NOTICES = {
    "complete": "Thank you: your payment went through. The credits are added as soon as "
    "Stripe confirms it, usually within seconds.",
    "cancelled": "The checkout was cancelled: nothing was charged.",
}


def typed_credits(micro: int | None) -> str:
    """Micro-credits as a form's field takes them back: 2500000 is "2.5", None is blank."""
    if micro is None:
        return ""
    whole, fraction = divmod(micro, 1_000_000)
    decimals = f"{fraction:06d}".rstrip("0")
    return f"{whole}.{decimals}" if decimals else str(whole)


async def page(visit: Visit, status_code: int = 200, **context: Any) -> Response:
    """The billing page, with a form's error or typed values in `context`."""
    balance = await visit.call(me.get_balance)
    packs = await visit.call(me.packs_on_sale)
    low_balance = await visit.call(me.get_low_balance)
    ledger_cursor, ledger = await visit.paged(me.get_ledger, cursor_param="ledger_cursor")
    tasks_cursor, tasks = await visit.paged(me.list_tasks, cursor_param="tasks_cursor")
    payments_cursor, payments = await visit.paged(me.list_payments, cursor_param="payments_cursor")
    invoices_cursor, invoices = await visit.paged(me.list_invoices, cursor_param="invoices_cursor")
    cursors = (ledger_cursor, tasks_cursor, payments_cursor, invoices_cursor)
    current = dict(zip(CURSORS, cursors, strict=True))
    kept = {name: {k: v for k, v in current.items() if k != name} for name in CURSORS}
    query = visit.request.query_params
    return visit.render(
        "billing.html",
        status_code,
        balance=balance,
        packs=packs["items"],
        pack_names={pack["id"]: pack["name"] for pack in packs["items"]},
        low_balance=low_balance,
        ledger=ledger,
        tasks=tasks,
        payments=payments,
        invoices=invoices,
        cursors=current,
        kept=kept,
        checkout_notice=CHECKOUT_NOTICES.get(query.get("checkout", "")),
        saved=query.get("saved"),
        typed=context.pop("typed", None)
        or {
            "threshold": typed_credits(low_balance["threshold"]),
            "pack": low_balance["pack"] or "",
            "auto_recharge": low_balance["auto_recharge"],
        },
        **context,
    )


@customer_page
async def billing_page(visit: Visit) -> Response:
    return await page(visit)
