"""`POST /v1/orgs/{org}/payments/{payment}/refund`: money back to the payer through Stripe's
Refunds API, all of what is left or `amount` minor units of it. The credits follow with Stripe's
`charge.refunded` event (control/payments/purchases.py takes back its share), as they do for a
refund made in Stripe's dashboard: one path, whoever refunds."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import JSONResponse

from control.api import schemas, validate
from control.api.access import admin_for
from control.api.orgs import load_org
from control.http import ApiError, conflict, not_found
from control.payments import money
from control.payments.checkout import stripe_of
from control.payments.stripeapi import Declined, Unavailable
from control.store import db as dbm
from control.store.state import ControlState


async def refund_payment(request: Request) -> JSONResponse:
    """Refund a paid payment, whole or in part (`amount`, minor units); 202: the credits go
    when Stripe reports the refund."""
    state: ControlState = request.app.state.control
    admin = await admin_for(request)
    org_id, payment_id = request.path_params["org"], request.path_params["payment"]
    body = await schemas.body_of(request, schemas.RefundCreate)
    await load_org(state, org_id)
    payment = await dbm.fetch_one(
        state.db, "SELECT * FROM payments WHERE id=? AND org_id=?", payment_id, org_id
    )
    if payment is None:
        raise not_found("Payment")
    if payment["status"] != "paid" or not payment["payment_intent"]:
        raise conflict(f"The payment is {payment['status']}: only a paid one is refunded.")
    row = await dbm.fetch_one(
        state.db,
        "SELECT refunded FROM payment_refunds WHERE payment_intent=?",
        payment["payment_intent"],
    )
    left = payment["amount"] - (row["refunded"] if row is not None else 0)
    if left <= 0:
        raise conflict("The payment was refunded whole.")
    amount = validate.int_range(body["amount"], "amount", 1, left) if "amount" in body else left
    reason = validate.text(body, "reason", maximum=500) if "reason" in body else None
    params = {
        "payment_intent": payment["payment_intent"],
        "amount": amount,
        "metadata": {"org_id": org_id, "payment_id": payment_id, "by": admin.token_id},
    }
    try:
        refund = await stripe_of(request).refund(params, "refund-" + secrets.token_urlsafe(16))
    except Unavailable as exc:
        raise ApiError(
            503, "PaymentProviderUnavailable", f"Stripe cannot be reached now ({exc})."
        ) from None
    except Declined as exc:  # not for refunds, but Stripe's client may raise it
        raise conflict(f"Stripe refused the refund: {exc}") from None
    async with state.transaction() as tx:
        detail = {"payment": payment_id, "refund": refund["id"], "amount": amount}
        await state.audit(tx, admin.token_id, "payment.refund", org_id, detail | {"reason": reason})
    answer = {
        "id": refund["id"],
        "payment": payment_id,
        "amount": amount,
        "currency": payment["currency"],
        "amount_display": money.label(amount, payment["currency"]),
        "status": refund.get("status") or "pending",
    }
    return JSONResponse(answer, status_code=202)
