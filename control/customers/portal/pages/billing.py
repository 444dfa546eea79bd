"""The portal's billing page: the org's balance (available and reserved), its ledger and its
generation tasks, each paged, with their CSVs, for every member (the customer API's reads)."""

from __future__ import annotations

from starlette.responses import Response

from control.customers import routes as me
from control.customers.portal.calls import Visit, customer_page


@customer_page
async def billing_page(visit: Visit) -> Response:
    balance = await visit.call(me.get_balance)
    ledger_cursor, ledger = await visit.paged(me.get_ledger, cursor_param="ledger_cursor")
    tasks_cursor, tasks = await visit.paged(me.list_tasks, cursor_param="tasks_cursor")
    return visit.render(
        "billing.html",
        balance=balance,
        ledger=ledger,
        ledger_cursor=ledger_cursor,
        tasks=tasks,
        tasks_cursor=tasks_cursor,
    )
