"""The Stripe simulator's Starlette app: Stripe's routes, the hosted pages, the test controls,
and the webhook delivery task for the app's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.routing import Route

from simulator.stripe import api, controls, pages
from simulator.stripe.state import StripeState
from simulator.stripe.webhooks import DeliveryPolicy, Webhooks


def create_app(state: StripeState, policy: DeliveryPolicy | None = None) -> Starlette:
    webhooks = Webhooks(state, policy or DeliveryPolicy())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        delivery = asyncio.create_task(webhooks.run())
        try:
            yield
        finally:
            delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await delivery

    fallback = Route(
        "/{path:path}", api.unknown_route, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]
    )
    app = Starlette(
        routes=[
            *api.routes(state, webhooks),
            *pages.routes(state, webhooks),
            *controls.routes(state, webhooks),
            fallback,
        ],
        lifespan=lifespan,
    )
    app.state.stripe = state
    app.state.webhooks = webhooks
    return app
