"""One org's billing tab: its ledger (grants, charges, refunds), granting credits, its
generation tasks with their status and cost, its Stripe payments (checkouts, auto-recharges,
each refundable through Stripe) and invoices, and its low-balance settings. Each table is
paged on its own cursor."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from control.api import billing
from control.http import ApiError
from control.payments import history, invoices, lowbalance, money, refunds
from control.ui import formvalues, web
from control.ui.formvalues import FormError
from control.ui.pages.org import org_header
from control.ui.sessions import Session
from control.ui.web import call, paged, render, signed_in


async def _billing_tab(
    request: Request,
    session: Session,
    *,
    status_code: int = 200,
    grant_error: str | None = None,
    refund_error: str | None = None,
    typed: dict[str, str] | None = None,
) -> Response:
    org_id = request.path_params["org"]
    where = {"org": org_id}
    query = request.query_params
    # An unknown status is left to the API to refuse, with its own message.
    task_status = query.get("status", "")
    header = await org_header(request, session, org_id)
    ledger_cursor, ledger = await paged(request, session, billing.get_ledger, path_params=where)
    tasks_cursor, tasks = await paged(
        request,
        session,
        billing.list_tasks,
        path_params=where,
        query={"status": task_status},
        cursor_param="tasks_cursor",
    )
    payments_cursor, payments = await paged(
        request,
        session,
        history.list_payments,
        path_params=where,
        cursor_param="payments_cursor",
    )
    invoices_cursor, org_invoices = await paged(
        request,
        session,
        invoices.list_invoices,
        path_params=where,
        cursor_param="invoices_cursor",
    )
    low_balance = await call(request, session, lowbalance.get_low_balance, path_params=where)
    # A pager keeps the other tables' cursors (and the task filter) where they are.
    current = {
        "cursor": ledger_cursor,
        "tasks_cursor": tasks_cursor,
        "payments_cursor": payments_cursor,
        "invoices_cursor": invoices_cursor,
    }
    kept = {
        name: {"status": task_status} | {k: v for k, v in current.items() if k != name}
        for name in current
    }
    granted = query.get("granted", "")
    return render(
        request,
        "org_billing.html",
        session,
        status_code,
        **header,
        tab="billing",
        ledger=ledger,
        ledger_cursor=ledger_cursor,
        tasks=tasks,
        tasks_cursor=tasks_cursor,
        task_status=task_status,
        payments=payments,
        payments_cursor=payments_cursor,
        invoices_cursor=invoices_cursor,
        invoices=org_invoices,
        low_balance=low_balance,
        kept=kept,
        task_statuses=billing.TASK_STATUSES,
        granted=int(granted) if granted.isdigit() else None,
        grant_error=grant_error,
        refund_error=refund_error,
        refunded=query.get("refunded", ""),
        typed=typed or {},
    )


@signed_in
async def billing_page(request: Request, session: Session) -> Response:
    return await _billing_tab(request, session)


@signed_in
async def grant_credits(request: Request, session: Session) -> Response:
    form = await web.form_of(request, session)
    org_id = request.path_params["org"]
    typed = {"amount": form.get("amount", ""), "reason": form.get("reason", "")}
    try:
        amount = formvalues.credits(typed["amount"], "Amount")
        if amount <= 0:
            raise FormError("Amount must be more than zero credits.")
        if amount > billing.MAX_GRANT:  # said in credits, not the API's micro-credits
            raise FormError(f"Amount must be at most {web.credits(billing.MAX_GRANT)} credits.")
        body: dict[str, Any] = {"amount": amount}
        if typed["reason"].strip():
            body["reason"] = typed["reason"].strip()
        await call(request, session, billing.grant_credits, path_params={"org": org_id}, body=body)
    except (FormError, ApiError) as exc:
        status, message = formvalues.refusal(exc)
        return await _billing_tab(
            request, session, status_code=status, grant_error=message, typed=typed
        )
    # Post/redirect/get: reloading the page shows the grant, it does not make it again.
    return RedirectResponse(f"/ui/orgs/{org_id}/billing?granted={amount}", status_code=303)


@signed_in
async def refund_payment(request: Request, session: Session) -> Response:
    """A refund through Stripe of a paid payment, whole or the amount typed (major units of
    its currency); the credits go when Stripe reports it."""
    form = await web.form_of(request, session)
    org_id, payment_id = request.path_params["org"], request.path_params["payment"]
    typed = form.get("amount", "").strip()
    try:
        body: dict[str, Any] = {}
        if typed:
            try:
                body["amount"] = money.parse_major(typed, form.get("currency", ""))
            except money.MoneyError as exc:
                raise FormError(f"Refund amount: {exc}.") from None
        where = {"org": org_id, "payment": payment_id}
        await call(request, session, refunds.refund_payment, path_params=where, body=body)
    except (FormError, ApiError) as exc:
        status, message = formvalues.refusal(exc)
        return await _billing_tab(request, session, status_code=status, refund_error=message)
    return RedirectResponse(f"/ui/orgs/{org_id}/billing?refunded={payment_id}", status_code=303)
