"""`GET /v1/orgs/{org}/payments`: the org's payments (checkouts and auto-recharges), newest
first, with what each granted and what Stripe's refunds and lost disputes took back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from control.api import csvout
from control.api.access import admin_for
from control.api.orgs import load_org
from control.api.rows import newest
from control.http import page_limit
from control.payments.purchases import payment_json
from control.store.state import ControlState

COLUMNS = [
    "id",
    "kind",
    "pack",
    "credits",
    "amount",
    "currency",
    "amount_display",
    "status",
    "payment_intent",
    "credits_taken_back",
    "error",
    "created_at",
    "updated_at",
]


async def org_rows(
    request: Request,
    table: str,
    render: Callable[[Any], dict[str, Any]],
    columns: list[str],
    name: str,
    order: tuple[str, str],
) -> Response:
    """An org's rows of a payments table, newest first by `order` (a time, then the id), a
    page at a cursor or every page as CSV (`name`.csv)."""
    state: ControlState = request.app.state.control
    await admin_for(request)
    org_id = request.path_params["org"]
    csv = csvout.wants_csv(request)
    await load_org(state, org_id)
    limit = page_limit(request)

    async def read(cursor: str | None) -> dict[str, Any]:
        return await newest(
            state, table, render, ["org_id=?"], [org_id], limit, cursor or None, order
        )

    return await csvout.page_or_csv(request, csv, columns, read, name)


async def list_payments(request: Request) -> Response:
    """The org's payments, newest first (CSV: every page)."""
    return await org_rows(
        request, "payments", payment_json, COLUMNS, "payments", ("created_at", "id")
    )
