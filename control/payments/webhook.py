"""`POST /v1/integrations/stripe/webhook`: Stripe's events, verified by Stripe's own library
(`stripe.Webhook.construct_event`: `Stripe-Signature`, HMAC-SHA256 over `t.body`, five
minutes' tolerance) against `NEXTAPI_STRIPE_WEBHOOK_SECRET`, each applied once by its id in
the transaction that claims it: a replay, a duplicate or a retry after a crash changes nothing
twice, and an event that fails to apply is not claimed (Stripe sends it again).

Public: Stripe holds no admin token; the signature is the authentication. Without a signing
secret the route refuses everything (fail closed)."""

from __future__ import annotations

import logging
import os
from typing import Any

import stripe
from starlette.requests import Request
from starlette.responses import JSONResponse

from control.http import ApiError, bad_request, bounded_body
from control.payments import events, fields
from control.payments.lowbalance import LowBalance
from control.store import db as dbm
from control.store.state import ControlState

log = logging.getLogger(__name__)
SECRET_ENV = "NEXTAPI_STRIPE_WEBHOOK_SECRET"
MAX_BODY_BYTES = 1 << 20  # Stripe's events are a few kilobytes; its objects at most ~100 kB


def signing_secret() -> str:
    secret = os.environ.get(SECRET_ENV, "").strip()
    if not secret:
        raise ApiError(
            503,
            "NotConfigured",
            f"Stripe's webhooks are not accepted: {SECRET_ENV} (the endpoint's signing secret, "
            "`whsec_…`) is not set.",
        )
    return secret


async def stripe_webhook(request: Request) -> JSONResponse:
    state: ControlState = request.app.state.control
    secret = signing_secret()
    body = await bounded_body(request, MAX_BODY_BYTES, "1 MiB")
    header = request.headers.get("stripe-signature")
    if not header:
        raise _unverified("no Stripe-Signature header")
    try:
        verified = stripe.Webhook.construct_event(body, header, secret)
    except stripe.SignatureVerificationError as exc:
        raise _unverified(str(exc.user_message or "no valid signature")) from None
    except ValueError:  # the body is not JSON (checked after the signature, as Stripe does)
        raise bad_request("The webhook's body is not valid JSON.") from None
    event = verified.to_dict()
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
        raise bad_request("The event has no `id` or `type`.")
    now = dbm.now()
    watch: LowBalance = request.app.state.low_balance
    async with state.transaction() as tx:
        claimed = await tx.execute(
            "INSERT INTO stripe_events (id, type, outcome, received_at) "
            "VALUES (?, ?, '', ?) ON CONFLICT DO NOTHING",
            (event_id, event_type, now),
        )
        if claimed.rowcount == 0:
            return JSONResponse({"received": True, "replay": True})
        outcome = await events.apply(events.Applying(state, watch.outbox), tx, event, now)
        await tx.execute("UPDATE stripe_events SET outcome=? WHERE id=?", (outcome, event_id))
        org_id = await _org_of(tx, event)
        woke = org_id is not None and await watch.check(tx, org_id, now, settling=False)
    if woke:
        watch.wake()
    else:  # an event may have enqueued one of the org's own (a recharge that failed)
        watch.outbox.wake()
    log.info("stripe event %s %s: %s", event_id, event_type, outcome)
    return JSONResponse({"received": True, "outcome": outcome})


async def _org_of(tx: Any, event: dict[str, Any]) -> str | None:
    """The org whose balance the event may have moved (a grant re-arms its low-balance alert,
    a reversal may take it under), found by the payment it names."""
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        return None
    candidates = (obj.get("id"), obj.get("payment_intent"), fields.metadata(obj).get("payment_id"))
    names = [name for value in candidates if (name := fields.text(value)) is not None]
    if not names:
        return None
    marks = ", ".join("?" * len(names))
    row = await dbm.fetch_one(
        tx,
        f"SELECT org_id FROM payments WHERE id IN ({marks}) OR payment_intent IN ({marks}) LIMIT 1",
        *names,
        *names,
    )
    return row["org_id"] if row is not None else None


def _unverified(reason: str) -> ApiError:
    return ApiError(
        400,
        "InvalidSignature",
        f"The webhook's Stripe signature does not verify ({reason}): nothing was applied.",
    )
