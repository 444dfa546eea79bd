"""`POST /v1/integrations/clerk/webhook`: Clerk's webhooks, verified as Svix signs them (Svix's
own library: `svix-id`, `svix-timestamp`, `svix-signature` over `id.timestamp.body`, five
minutes' tolerance), each Svix message applied once, in the transaction that records it.

Public: Clerk holds no admin token; the signature is the authentication. Without a signing
secret the route refuses everything (fail closed)."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from svix.webhooks import Webhook, WebhookVerificationError

from control.customers import accounts, events
from control.customers.accounts import Changes
from control.http import ApiError, bad_request, bounded_body
from control.jobs.cancel import cancel_in_flight
from control.store.state import ControlState

log = logging.getLogger(__name__)
SECRET_ENV = "NEXTAPI_CLERK_WEBHOOK_SECRET"
MAX_BODY_BYTES = 1 << 20  # Clerk's events are a few kilobytes


def verifier() -> Webhook:
    """Svix's verifier over the signing secret in the environment, or a 503 saying why not."""
    secret = os.environ.get(SECRET_ENV, "").strip()
    if not secret:
        raise ApiError(
            503,
            "NotConfigured",
            f"Clerk's webhooks are not accepted: {SECRET_ENV} (the endpoint's signing secret, "
            "`whsec_…`) is not set.",
        )
    try:
        return Webhook(secret)
    except Exception:  # bad base64, or empty after `whsec_`: never echo the secret
        raise ApiError(
            503,
            "NotConfigured",
            f"Clerk's webhooks are not accepted: {SECRET_ENV} is not a signing secret "
            "(`whsec_` and base64).",
        ) from None


async def clerk_webhook(request: Request) -> JSONResponse:
    state: ControlState = request.app.state.control
    webhook = verifier()
    body = await bounded_body(request, MAX_BODY_BYTES, "1 MiB")
    try:
        webhook.verify(body, dict(request.headers))
    except WebhookVerificationError as exc:
        raise _unverified(str(exc)) from None
    except ValueError:  # a signature header svix cannot split or decode, a body not UTF-8
        raise _unverified("malformed signature headers or body") from None
    event = _event(body)
    event_type = event.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise bad_request("`type` must be the event's type.")
    # Present, as verified (Svix's library also takes the Standard Webhooks name).
    svix_id = request.headers.get("svix-id") or request.headers["webhook-id"]
    async with state.transaction() as tx:
        if not await accounts.claim_message(tx, svix_id, event_type):
            return JSONResponse({"received": True, "replay": True})
        changes = await events.apply(state, tx, event_type, event.get("data"))
    await _after(request, state, changes)
    return JSONResponse({"received": True, "handled": event_type in events.HANDLED})


def _unverified(reason: str) -> ApiError:
    return ApiError(
        400,
        "InvalidSignature",
        f"The webhook's Svix signature does not verify ({reason}): nothing was applied.",
    )


def _event(body: bytes) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except ValueError:
        raise bad_request("The webhook's body is not valid JSON.") from None
    if not isinstance(event, dict):
        raise bad_request("The webhook's body must be a JSON object.")
    return event


async def _after(request: Request, state: ControlState, changes: Changes) -> None:
    """Once committed: the edges learn of new and closed orgs; a closed org's unfinished tasks
    are cancelled upstream, as the admin API's close does."""
    if changes.orgs_changed:
        await state.publish()
    for org_id in changes.orgs_closed or ():
        in_flight = await cancel_in_flight(
            state, request.app.state.wallet, request.app.state.canceller, org_id
        )
        if in_flight["cancelled"] or in_flight["left_running"]:
            async with state.transaction() as tx:
                await state.audit(tx, accounts.ACTOR, "org.cancel_tasks", org_id, in_flight)
