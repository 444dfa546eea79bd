"""The portal's billing writes, for org admins (the customer API refuses members): buying a
credit pack, which makes a Stripe Checkout Session through the customer API's own
`create_checkout` and sends the browser to Stripe's payment page, from where Stripe sends it
back to the billing page on the host it came from; and the low-balance alert with its
auto-recharge. The credits come with Stripe's signed event, never with the return."""

from __future__ import annotations

from typing import Any

from starlette.responses import RedirectResponse, Response

from control.customers import routes as me
from control.customers.portal.calls import Visit, customer_page
from control.customers.portal.pages.billing import BILLING, page
from control.http import ApiError
from control.payments import checkout
from control.ui import formvalues
from control.ui.formvalues import FormError


@customer_page
async def buy(visit: Visit) -> Response:
    form = await visit.form()
    # Back to the billing page on the host and scheme the browser used (the in-process call
    # below has no Host of its own).
    body = {"pack": form.get("pack", ""), **checkout.portal_return(visit.request)}
    try:
        session = await visit.call(me.create_checkout, body=body)
    except ApiError as refused:
        if refused.status == 403:
            raise  # a member: the refusal page says only admins buy
        return await page(visit, refused.status, buy_error=refused.message)
    return RedirectResponse(session["url"], status_code=303)


@customer_page
async def set_low_balance(visit: Visit) -> Response:
    form = await visit.form()
    typed = {
        "threshold": form.get("threshold", "").strip(),
        "pack": form.get("pack", ""),
        "auto_recharge": form.get("auto_recharge") == "on",
    }
    try:
        threshold = (
            formvalues.credits(typed["threshold"], "The threshold") if typed["threshold"] else None
        )
        body: dict[str, Any] = {
            "threshold": threshold,
            "pack": typed["pack"] or None,
            "auto_recharge": typed["auto_recharge"],
        }
        await visit.call(me.put_low_balance, body=body, method="PUT")
    except (FormError, ApiError) as exc:
        if isinstance(exc, ApiError) and exc.status == 403:
            raise
        status, message = formvalues.refusal(exc)
        return await page(visit, status, low_balance_error=message, typed=typed)
    return RedirectResponse(f"{BILLING}?saved=low-balance", status_code=303)
