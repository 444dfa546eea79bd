"""Checkout Sessions (mode=payment only): creating one as Stripe validates it, and completing it
when the customer presses Pay on the hosted page, with the objects and events that follow."""

from __future__ import annotations

from typing import Any

from simulator.stripe.errors import StripeError, invalid, missing, unknown_params
from simulator.stripe.forms import get_bool, get_dict, get_int, get_metadata, get_str
from simulator.stripe.payments import (
    check_currency,
    new_payment_intent,
    new_payment_method,
    succeed,
)
from simulator.stripe.state import StripeState, base_object, now
from simulator.stripe.webhooks import Webhooks

SESSION_PARAMS = frozenset(
    {
        "mode",
        "line_items",
        "success_url",
        "cancel_url",
        "client_reference_id",
        "metadata",
        "customer",
        "customer_email",
        "customer_creation",
        "invoice_creation",
        "payment_intent_data",
        "payment_method_types",
        "expand",
        "locale",
        "expires_at",
        "allow_promotion_codes",
        "billing_address_collection",
        "submit_type",
        "ui_mode",
    }
)
CUSTOMER_PARAMS = frozenset({"email", "name", "metadata", "description", "phone", "expand"})


def create_customer(state: StripeState, params: dict[str, Any]) -> dict[str, Any]:
    unknown_params(params, CUSTOMER_PARAMS)
    customer = base_object("cus", "customer")
    customer.update(
        {
            "email": get_str(params, "email"),
            "name": get_str(params, "name"),
            "description": get_str(params, "description"),
            "phone": get_str(params, "phone"),
            "metadata": get_metadata(params),
            "invoice_settings": {"default_payment_method": None},
            "invoice_prefix": "NXT",
        }
    )
    return state.add(customer)


def _url(params: dict[str, Any], name: str) -> str | None:
    value = get_str(params, name)
    if value is not None and not value.startswith(("http://", "https://")):
        raise invalid(name, "Not a valid URL", "url_invalid")
    return value


def _line_items(params: dict[str, Any]) -> list[dict[str, Any]]:
    raw = params.get("line_items")
    if raw is None or raw == []:
        raise missing("line_items")
    if not isinstance(raw, list):
        raise invalid("line_items", "Invalid array", "parameter_invalid")
    items = []
    for index, item in enumerate(raw):
        where = f"line_items[{index}]"
        if not isinstance(item, dict):
            raise invalid(where, "Invalid object")
        if "price" in item:
            raise StripeError(
                400,
                f"No such price: '{item['price']}'",
                code="resource_missing",
                param=f"{where}[price]",
            )
        quantity = get_int(item, "quantity", f"{where}[quantity]")
        if quantity is None:
            raise missing(f"{where}[quantity]")
        if quantity < 1:
            raise invalid(f"{where}[quantity]", "Quantity must be at least 1.")
        price_data = get_dict(item, "price_data", f"{where}[price_data]")
        if not price_data:
            raise missing(f"{where}[price_data]")
        currency = check_currency(get_str(price_data, "currency"), f"{where}[price_data][currency]")
        unit_amount = get_int(price_data, "unit_amount", f"{where}[price_data][unit_amount]")
        if unit_amount is None:
            raise missing(f"{where}[price_data][unit_amount]")
        if unit_amount < 0:
            raise invalid(f"{where}[price_data][unit_amount]", "unit_amount must be >= 0.")
        product = get_dict(price_data, "product_data", f"{where}[price_data][product_data]")
        name = get_str(product, "name", f"{where}[price_data][product_data][name]")
        if not name:
            raise missing(f"{where}[price_data][product_data][name]")
        items.append(
            {
                "currency": currency,
                "unit_amount": unit_amount,
                "quantity": quantity,
                "name": name,
                "amount_total": unit_amount * quantity,
            }
        )
    if len({item["currency"] for item in items}) > 1:
        raise invalid("line_items", "All line items must use the same currency.")
    return items


def create_session(state: StripeState, params: dict[str, Any], base_url: str) -> dict[str, Any]:
    unknown_params(params, SESSION_PARAMS)
    mode = get_str(params, "mode")
    if mode is None:
        raise missing("mode")
    if mode != "payment":
        raise invalid("mode", f"Invalid mode: the simulator supports only 'payment', not {mode!r}.")
    items = _line_items(params)
    customer = get_str(params, "customer")
    email = get_str(params, "customer_email")
    creation = get_str(params, "customer_creation")
    if customer is not None:
        state.get("customer", customer, "customer")
        if email is not None:
            raise invalid(
                "customer_email", "You may only specify one of customer or customer_email."
            )
        if creation is not None:
            raise invalid("customer_creation", "customer_creation cannot be used with customer.")
    if creation not in (None, "always", "if_required"):
        raise invalid("customer_creation", "customer_creation must be 'always' or 'if_required'.")
    invoice_creation = get_dict(params, "invoice_creation")
    invoice_enabled = get_bool(invoice_creation, "enabled") if invoice_creation else None
    if invoice_creation and invoice_enabled is None:
        raise missing("invoice_creation[enabled]")
    invoice_data = get_dict(invoice_creation, "invoice_data", "invoice_creation[invoice_data]")
    intent_data = get_dict(params, "payment_intent_data")
    future = get_str(intent_data, "setup_future_usage", "payment_intent_data[setup_future_usage]")
    if future not in (None, "off_session", "on_session"):
        raise invalid("payment_intent_data[setup_future_usage]", f"Invalid value: {future}.")
    session = base_object("cs_test", "checkout.session")
    total = sum(item["amount_total"] for item in items)
    session.update(
        {
            "amount_subtotal": total,
            "amount_total": total,
            "cancel_url": _url(params, "cancel_url"),
            "client_reference_id": get_str(params, "client_reference_id"),
            "currency": items[0]["currency"],
            "customer": customer,
            "customer_creation": creation,
            "customer_details": None,
            "customer_email": email,
            "expires_at": now() + 86400,
            "invoice": None,
            "invoice_creation": {
                "enabled": bool(invoice_enabled),
                "invoice_data": {
                    "description": get_str(invoice_data, "description"),
                    "metadata": get_metadata(
                        invoice_data, "invoice_creation[invoice_data][metadata]"
                    ),
                },
            },
            "line_items_preview": items,  # the simulator's own: what the hosted page shows
            "metadata": get_metadata(params),
            "mode": "payment",
            "payment_intent": None,
            "payment_intent_data": {
                "setup_future_usage": future,
                "metadata": get_metadata(intent_data, "payment_intent_data[metadata]"),
            },
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "status": "open",
            "success_url": _url(params, "success_url"),
            "url": None,
        }
    )
    session["url"] = f"{base_url}/checkout/{session['id']}"
    return state.add(session)


def public_session(session: dict[str, Any]) -> dict[str, Any]:
    """The session as Stripe answers it (without the simulator's bookkeeping fields)."""
    hidden = ("line_items_preview", "payment_intent_data")
    return {k: v for k, v in session.items() if k not in hidden}


def _invoice(
    state: StripeState, session: dict[str, Any], intent: dict[str, Any], base_url: str
) -> dict[str, Any]:
    invoice = base_object("in", "invoice")
    data = session["invoice_creation"]["invoice_data"]
    invoice.update(
        {
            "amount_due": session["amount_total"],
            "amount_paid": 0,
            "amount_remaining": session["amount_total"],
            "currency": session["currency"],
            "customer": session["customer"],
            "customer_email": (session["customer_details"] or {}).get("email"),
            "description": data["description"],
            "hosted_invoice_url": f"{base_url}/invoices/{invoice['id']}",
            "invoice_pdf": f"{base_url}/invoices/{invoice['id']}/pdf",
            "lines": {
                "object": "list",
                "data": [
                    {
                        "object": "line_item",
                        "amount": item["amount_total"],
                        "currency": item["currency"],
                        "description": item["name"],
                        "quantity": item["quantity"],
                    }
                    for item in session["line_items_preview"]
                ],
                "has_more": False,
                "url": f"/v1/invoices/{invoice['id']}/lines",
            },
            "metadata": dict(data["metadata"]),
            "number": state.next_invoice_number(),
            "payment_intent": intent["id"],
            "status": "open",
            "status_transitions": {"finalized_at": now(), "paid_at": None},
            "subtotal": session["amount_total"],
            "total": session["amount_total"],
        }
    )
    return state.add(invoice)


def _customer_for(state: StripeState, session: dict[str, Any]) -> dict[str, Any]:
    if session["customer"] is not None:
        return state.get("customer", session["customer"])
    email = session["customer_email"] or "customer@example.com"
    return create_customer(state, {"email": email})


def complete_session(
    state: StripeState,
    webhooks: Webhooks,
    session: dict[str, Any],
    base_url: str,
    *,
    asynchronous: bool = False,
) -> None:
    """Pay the session: customer, PaymentIntent and Charge (and card, invoice), then the events
    in Stripe's order. `asynchronous` is a delayed method: completed first while still unpaid,
    the money later (here: at once) with `async_payment_succeeded`."""
    customer = _customer_for(state, session)
    future = session["payment_intent_data"]["setup_future_usage"]
    method = new_payment_method(state, customer["id"] if future else None)
    method["billing_details"]["email"] = customer["email"]
    intent = new_payment_intent(
        state,
        amount=session["amount_total"],
        currency=session["currency"],
        customer=customer["id"],
        payment_method=method["id"],
        metadata=dict(session["payment_intent_data"]["metadata"]),
        setup_future_usage=future,
    )
    session.update(
        {
            "customer": customer["id"],
            "customer_details": {"email": customer["email"], "name": customer["name"]},
            "payment_intent": intent["id"],
            "status": "complete",
            "url": None,  # as Stripe's: a session has a URL only while it is open
        }
    )
    invoice = None
    if session["invoice_creation"]["enabled"]:
        invoice = _invoice(state, session, intent, base_url)
        session["invoice"] = invoice["id"]
    if asynchronous:
        intent["status"] = "processing"
        webhooks.emit("checkout.session.completed", public_session(session))
        if invoice is not None:
            webhooks.emit("invoice.finalized", invoice)
    succeed(state, intent)
    session["payment_status"] = "paid"
    if not asynchronous:
        webhooks.emit("checkout.session.completed", public_session(session))
        if invoice is not None:
            webhooks.emit("invoice.finalized", invoice)
    else:
        webhooks.emit("checkout.session.async_payment_succeeded", public_session(session))
    if invoice is not None:
        invoice.update(
            {"amount_paid": invoice["amount_due"], "amount_remaining": 0, "status": "paid"}
        )
        invoice["status_transitions"]["paid_at"] = now()
        webhooks.emit("invoice.paid", invoice)
