"""`POST /v1/orgs/{org}/checkout` (and the customer's `POST /v1/me/checkout`): a Stripe Checkout
Session for a credit pack, whose URL the payer is sent to. The credits come with Stripe's event
that the session was paid (control/payments/events.py), never with this call.

The session carries the org and the pack (client_reference_id and metadata), asks Stripe for
an invoice, and, when the org recharges automatically or the payer asks, keeps the card for
off-session payments. It is recorded here after Stripe made it; should the process die in
between, its paid event still grants, from that metadata."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse

from control.api import schemas, validate
from control.api.access import admin_for
from control.api.orgs import load_org
from control.http import ApiError, bad_request, conflict, not_found
from control.payments import packs, purchases
from control.payments.stripeapi import StripeApi, Unavailable
from control.store import db as dbm
from control.store.state import ControlState

RETURN_PATH = "/portal/billing"


def stripe_of(request: Request) -> StripeApi:
    return request.app.state.stripe


async def create_checkout(request: Request) -> JSONResponse:
    """A Checkout Session for an active pack: answers its id and Stripe's payment page URL."""
    state: ControlState = request.app.state.control
    admin = await admin_for(request)
    org_id = request.path_params["org"]
    body = await schemas.body_of(request, schemas.CheckoutCreate)
    pack_id = validate.text(body, "pack", maximum=64)
    wants_card = validate.flag(body, "save_card")
    org = await load_org(state, org_id)
    if org["status"] == "closed":
        raise conflict("The org is closed.")
    pack = await packs.find(state.db, pack_id, active=True)
    if pack is None:
        raise not_found("Credit pack (on sale)")
    success_url = _return_url(request, body, "success_url")
    cancel_url = _return_url(request, body, "cancel_url")
    api = stripe_of(request)
    customer_id = await customer_for(state, api, org)
    account = await dbm.fetch_one(
        state.db, "SELECT auto_recharge FROM billing_accounts WHERE org_id=?", org_id
    )
    save_card = wants_card or bool(account and account["auto_recharge"])
    metadata = {"org_id": org_id, "pack": pack["id"], "save_card": "1" if save_card else "0"}
    payment_intent_data: dict[str, Any] = {"metadata": metadata}
    if save_card:
        payment_intent_data["setup_future_usage"] = "off_session"
    params = {
        "mode": "payment",
        "client_reference_id": org_id,
        "customer": customer_id,
        "metadata": metadata,
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": pack["currency"],
                    "unit_amount": pack["amount"],
                    "product_data": {"name": f"NextAPI {pack['name']}"},
                },
            }
        ],
        "invoice_creation": {"enabled": True, "invoice_data": {"metadata": metadata}},
        "payment_intent_data": payment_intent_data,
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    try:
        session = await api.create_checkout(params, "checkout-" + secrets.token_urlsafe(16))
    except Unavailable as exc:
        raise _unavailable(exc) from None
    now = dbm.now()
    async with state.transaction() as tx:
        await purchases.record(tx, session["id"], org_id, pack, "checkout", "open", now)
        detail = {"session": session["id"], "pack": pack["id"], "amount": pack["amount"]}
        await state.audit(tx, admin.token_id, "checkout.create", org_id, detail)
    answer = {
        "id": session["id"],
        "url": session["url"],
        "pack": pack["id"],
        "credits": pack["credits"],
        "amount": pack["amount"],
        "currency": pack["currency"],
    }
    return JSONResponse(answer, status_code=201)


async def customer_for(state: ControlState, api: StripeApi, org: Any) -> str:
    """The org's Stripe customer, made at its first checkout (one per org: Stripe's
    idempotency key and the unique column keep a race to one)."""
    account = await dbm.fetch_one(
        state.db, "SELECT customer_id FROM billing_accounts WHERE org_id=?", org["id"]
    )
    if account is not None and account["customer_id"]:
        return account["customer_id"]
    try:
        customer_id = await api.create_customer(org["id"], org["name"], org["email"])
    except Unavailable as exc:
        raise _unavailable(exc) from None
    async with state.transaction() as tx:
        await tx.execute(
            "INSERT INTO billing_accounts (org_id, customer_id, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (org_id) DO UPDATE SET "
            "customer_id=COALESCE(billing_accounts.customer_id, excluded.customer_id), "
            "updated_at=excluded.updated_at",
            (org["id"], customer_id, dbm.now()),
        )
        row = await dbm.fetch_one(
            tx, "SELECT customer_id FROM billing_accounts WHERE org_id=?", org["id"]
        )
    assert row is not None
    return row["customer_id"]


def portal_return(request: Request) -> dict[str, str]:
    """The portal's billing page on the host the caller reached, as Stripe's success_url (with
    the session id, which Stripe fills in) and cancel_url."""
    page = request.url.replace(path=RETURN_PATH, fragment="")
    return {
        "success_url": str(page.replace(query="checkout=complete&session={CHECKOUT_SESSION_ID}")),
        "cancel_url": str(page.replace(query="checkout=cancelled")),
    }


def _return_url(request: Request, body: dict[str, Any], field: str) -> str:
    """Where Stripe sends the payer back: the caller's URL (http or https, absolute), or the
    portal's billing page."""
    if field not in body:
        return portal_return(request)[field]
    given = validate.text(body, field, maximum=2048)
    parts = urlsplit(given)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise bad_request(f"`{field}` must be an absolute http or https URL.")
    return given


def _unavailable(exc: Exception) -> ApiError:
    return ApiError(
        503, "PaymentProviderUnavailable", f"Stripe cannot be reached now ({exc}); try again."
    )
