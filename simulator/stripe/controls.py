"""Test controls under `/_sim/` (not Stripe's; the same Bearer key): disputes, declines, the
webhook endpoint and delivery switch, the event log with resend, and object counts."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator.stripe import payments
from simulator.stripe.api import check_key
from simulator.stripe.errors import StripeError, invalid
from simulator.stripe.state import StripeState
from simulator.stripe.webhooks import Webhooks

Control = Callable[[Request, dict[str, Any]], Awaitable[Any]]


def _control(state: StripeState, handler: Control) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        try:
            check_key(state, request)
            raw = await request.body()
            body: Any = {}
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise invalid("body", "The body must be JSON.") from None
            if not isinstance(body, dict):
                raise invalid("body", "The body must be a JSON object.")
            return JSONResponse(await handler(request, body))
        except StripeError as error:
            return error.response()

    return serve


def routes(state: StripeState, webhooks: Webhooks) -> list[Route]:
    async def dispute(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return payments.create_dispute(state, webhooks, body)

    async def close(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return payments.close_dispute(
            state, webhooks, request.path_params["id"], body.get("status")
        )

    async def declines(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        enabled = body.get("enabled")
        if not isinstance(enabled, bool):
            raise invalid("enabled", "enabled must be true or false.")
        state.declines = enabled
        return {"enabled": enabled}

    async def webhook(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if "url" in body:
            url = body["url"]
            if url is not None and (not isinstance(url, str) or not url.startswith("http")):
                raise invalid("url", "url must be null or an http(s) URL.")
            state.webhook_url = url
        if "deliver" in body:
            if not isinstance(body["deliver"], bool):
                raise invalid("deliver", "deliver must be true or false.")
            state.deliver = body["deliver"]
        return {"url": state.webhook_url, "deliver": state.deliver}

    async def events(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return {"data": [record.public() for record in webhooks.events]}

    async def resend(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        """One more signed POST of the event, now, whatever `deliver` says; answers how the
        receiver took it (so a test can assert a duplicate was accepted)."""
        record = webhooks.by_id.get(request.path_params["id"])
        if record is None:
            raise StripeError(
                404,
                f"No such event: '{request.path_params['id']}'",
                code="resource_missing",
                param="id",
            )
        url = body.get("url", state.webhook_url)
        if not isinstance(url, str) or not url:
            raise invalid("url", "No webhook URL: set one with PUT /_sim/webhook or pass url.")
        await webhooks.send_once(record, url)
        return record.public()

    async def counts(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        kinds = (
            "customer",
            "checkout.session",
            "payment_intent",
            "charge",
            "payment_method",
            "refund",
            "invoice",
            "dispute",
        )
        return {
            "counts": {kind: state.count(kind) for kind in kinds} | {"event": len(webhooks.events)},
            "declines": state.declines,
            "webhook": {"url": state.webhook_url, "deliver": state.deliver},
        }

    def route(path: str, handler: Control, method: str) -> Route:
        return Route(path, _control(state, handler), methods=[method])

    return [
        route("/_sim/disputes", dispute, "POST"),
        route("/_sim/disputes/{id}/close", close, "POST"),
        route("/_sim/declines", declines, "POST"),
        route("/_sim/webhook", webhook, "PUT"),
        route("/_sim/events", events, "GET"),
        route("/_sim/events/{id}/resend", resend, "POST"),
        route("/_sim/state", counts, "GET"),
    ]
