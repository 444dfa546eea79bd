"""PaymentIntents, Charges, PaymentMethods, Refunds and Disputes: building them and moving money.

Amounts are integers in the currency's minor units throughout, as Stripe's are.
"""

from __future__ import annotations

from typing import Any

from simulator.stripe.errors import StripeError, invalid, missing, unknown_params
from simulator.stripe.forms import get_bool, get_int, get_metadata, get_str
from simulator.stripe.state import StripeState, base_object, now
from simulator.stripe.webhooks import Webhooks

Request = dict[str, str | None]  # an event's `request`: the API call's id and idempotency key


def check_currency(value: str | None, param: str) -> str:
    if value is None:
        raise missing(param)
    if len(value) != 3 or not value.isalpha():
        raise invalid(param, f"Invalid currency: {value}.")
    return value.lower()


def new_payment_method(state: StripeState, customer: str | None) -> dict[str, Any]:
    """A card, as a saved test card looks (Visa 4242)."""
    method = base_object("pm", "payment_method")
    method.update(
        {
            "type": "card",
            "customer": customer,
            "card": {
                "brand": "visa",
                "last4": "4242",
                "exp_month": 12,
                "exp_year": 2034,
                "country": "US",
                "funding": "credit",
            },
            "billing_details": {"email": None, "name": None},
            "metadata": {},
        }
    )
    return state.add(method)


def new_charge(
    state: StripeState, intent: dict[str, Any], *, succeeded: bool, pending: bool = False
) -> dict[str, Any]:
    charge = base_object("ch", "charge")
    charge.update(
        {
            "amount": intent["amount"],
            "amount_captured": intent["amount"] if succeeded else 0,
            "amount_refunded": 0,
            "captured": succeeded,
            "currency": intent["currency"],
            "customer": intent["customer"],
            "description": intent.get("description"),
            "disputed": False,
            "failure_code": None if succeeded else "card_declined",
            "failure_message": None if succeeded else "Your card has insufficient funds.",
            "metadata": dict(intent["metadata"]),
            "outcome": {"type": "authorized" if succeeded else "issuer_declined"},
            "paid": succeeded,
            "payment_intent": intent["id"],
            "payment_method": intent["payment_method"],
            "refunded": False,
            "status": "pending" if pending else ("succeeded" if succeeded else "failed"),
        }
    )
    return state.add(charge)


def new_payment_intent(
    state: StripeState,
    *,
    amount: int,
    currency: str,
    customer: str | None,
    payment_method: str | None,
    metadata: dict[str, str],
    setup_future_usage: str | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    intent = base_object("pi", "payment_intent")
    intent.update(
        {
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "capture_method": "automatic",
            "client_secret": f"{intent['id']}_secret_{intent['id'][3:15]}",
            "confirmation_method": "automatic",
            "currency": currency,
            "customer": customer,
            "description": description,
            "last_payment_error": None,
            "latest_charge": None,
            "metadata": metadata,
            "payment_method": payment_method,
            "payment_method_types": ["card"],
            "setup_future_usage": setup_future_usage,
            "status": "requires_payment_method"
            if payment_method is None
            else "requires_confirmation",
        }
    )
    return state.add(intent)


def succeed(state: StripeState, intent: dict[str, Any]) -> dict[str, Any]:
    charge = new_charge(state, intent, succeeded=True)
    intent.update(
        {"status": "succeeded", "amount_received": intent["amount"], "latest_charge": charge["id"]}
    )
    return charge


PAYMENT_INTENT_PARAMS = frozenset(
    {
        "amount",
        "currency",
        "customer",
        "payment_method",
        "off_session",
        "confirm",
        "metadata",
        "description",
        "payment_method_types",
        "expand",
        "statement_descriptor",
        "receipt_email",
        "error_on_requires_action",
        "setup_future_usage",
    }
)


def create_payment_intent(
    state: StripeState, webhooks: Webhooks, params: dict[str, Any], request: Request
) -> dict[str, Any]:
    """Create, and with `confirm=true` charge at once (off session, on a saved card)."""
    unknown_params(params, PAYMENT_INTENT_PARAMS)
    amount = get_int(params, "amount")
    if amount is None:
        raise missing("amount")
    if amount < 1:
        raise invalid("amount", "This value must be greater than or equal to 1.")
    currency = check_currency(get_str(params, "currency"), "currency")
    customer = get_str(params, "customer")
    if customer is not None:
        state.get("customer", customer, "customer")
    method_id = get_str(params, "payment_method")
    if method_id is not None:
        method = state.get("payment_method", method_id, "payment_method")
        if method["customer"] != customer:
            raise invalid(
                "payment_method",
                f"The provided PaymentMethod {method_id} does not belong to the customer.",
            )
    off_session = get_bool(params, "off_session")
    confirm = get_bool(params, "confirm")
    if off_session and not confirm:
        raise invalid("off_session", "off_session can only be set when confirm is true.")
    intent = new_payment_intent(
        state,
        amount=amount,
        currency=currency,
        customer=customer,
        payment_method=method_id,
        metadata=get_metadata(params),
        description=get_str(params, "description"),
    )
    if not confirm:
        return intent
    if method_id is None:
        raise StripeError(
            400,
            "You cannot confirm this PaymentIntent because it's missing a payment method.",
            code="payment_intent_unexpected_state",
            param="payment_method",
        )
    if state.declines:
        charge = new_charge(state, intent, succeeded=False)
        error = {
            "charge": charge["id"],
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
            "type": "card_error",
        }
        intent.update(
            {
                "status": "requires_payment_method",
                "latest_charge": charge["id"],
                "last_payment_error": error,
            }
        )
        webhooks.emit("payment_intent.payment_failed", intent, request)
        raise StripeError(
            402,
            error["message"],
            type_="card_error",
            code="card_declined",
            extra={
                "decline_code": "insufficient_funds",
                "charge": charge["id"],
                "payment_intent": intent,
            },
        )
    succeed(state, intent)
    webhooks.emit("payment_intent.succeeded", intent, request)
    return intent


REFUND_PARAMS = frozenset({"payment_intent", "charge", "amount", "reason", "metadata", "expand"})
REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})


def paid_charge(state: StripeState, params: dict[str, Any]) -> dict[str, Any]:
    """The charge named by `charge`, or the latest of `payment_intent` (one of them, not both)."""
    charge_id, intent_id = get_str(params, "charge"), get_str(params, "payment_intent")
    if charge_id and intent_id:
        raise invalid("charge", "You can only pass one of charge or payment_intent.")
    if charge_id:
        charge = state.get("charge", charge_id, "charge")
    elif intent_id:
        intent = state.get("payment_intent", intent_id, "payment_intent")
        if intent["status"] != "succeeded" or intent["latest_charge"] is None:
            raise invalid(
                "payment_intent",
                f"PaymentIntent {intent_id} has not succeeded.",
                "charge_not_refundable",
            )
        charge = state.get("charge", intent["latest_charge"])
    else:
        raise missing("charge")
    if not charge["paid"]:
        raise invalid(
            "charge", f"Charge {charge['id']} has not succeeded.", "charge_not_refundable"
        )
    return charge


def create_refund(
    state: StripeState, webhooks: Webhooks, params: dict[str, Any], request: Request
) -> dict[str, Any]:
    unknown_params(params, REFUND_PARAMS)
    charge = paid_charge(state, params)
    remaining = charge["amount"] - charge["amount_refunded"]
    if remaining == 0:
        raise invalid(
            "charge", f"Charge {charge['id']} has already been refunded.", "charge_already_refunded"
        )
    amount = get_int(params, "amount")
    amount = remaining if amount is None else amount
    if amount < 1:
        raise invalid("amount", "Refund amount must be greater than 0.")
    if amount > remaining:
        raise invalid(
            "amount",
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining}).",
            "amount_too_large",
        )
    reason = get_str(params, "reason")
    if reason is not None and reason not in REFUND_REASONS:
        raise invalid(
            "reason", f"Invalid reason: must be one of {', '.join(sorted(REFUND_REASONS))}"
        )
    refund = base_object("re", "refund")
    refund.update(
        {
            "amount": amount,
            "charge": charge["id"],
            "currency": charge["currency"],
            "metadata": get_metadata(params),
            "payment_intent": charge["payment_intent"],
            "reason": reason,
            "status": "succeeded",
        }
    )
    state.add(refund)
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] == charge["amount"]
    webhooks.emit("charge.refunded", charge, request)
    return refund


def create_dispute(state: StripeState, webhooks: Webhooks, body: dict[str, Any]) -> dict[str, Any]:
    """A cardholder's dispute of a paid charge (a test control: Stripe has no such call)."""
    params = {
        k: str(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in body.items()
    }
    charge = paid_charge(state, params)
    amount = get_int(params, "amount")
    amount = charge["amount"] if amount is None else amount
    if not 1 <= amount <= charge["amount"]:
        raise invalid("amount", f"amount must be 1 to {charge['amount']}.")
    dispute = base_object("dp", "dispute")
    dispute.update(
        {
            "amount": amount,
            "charge": charge["id"],
            "currency": charge["currency"],
            "evidence_details": {"due_by": now() + 7 * 86400, "has_evidence": False},
            "is_charge_refundable": False,
            "metadata": {},
            "payment_intent": charge["payment_intent"],
            "reason": str(body.get("reason") or "fraudulent"),
            "status": "needs_response",
        }
    )
    state.add(dispute)
    charge["disputed"] = True
    webhooks.emit("charge.dispute.created", dispute)
    return dispute


def close_dispute(
    state: StripeState, webhooks: Webhooks, dispute_id: str, status: object
) -> dict[str, Any]:
    dispute = state.get("dispute", dispute_id)
    if status not in ("won", "lost"):
        raise invalid("status", "status must be 'won' or 'lost'.")
    if dispute["status"] in ("won", "lost"):
        raise invalid("status", f"Dispute {dispute_id} is already closed ({dispute['status']}).")
    dispute["status"] = status
    webhooks.emit("charge.dispute.closed", dispute)
    return dispute
