"""The control plane's Starlette app: every route is listed here, in one place."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from control.aggregates import api as aggregates
from control.api import (
    audit,
    billing,
    docs,
    edgeapi,
    export,
    keys,
    models,
    orgs,
    security,
    system,
    usage,
    walletapi,
    webhooks,
)
from control.api.access import ADMIN_FAILURES_PER_MINUTE
from control.api.openapi import document
from control.api.throttle import FailureThrottle
from control.customers import routes as customer
from control.customers import webhook as clerk
from control.customers.analytics import ProductAnalytics
from control.customers.portal import routes as portal
from control.customers.tokens import ClerkTokens
from control.http import ApiError, by_path, error_response
from control.jobs.delivery import Deliverer
from control.jobs.retention import Retention
from control.jobs.upstream import UpstreamTasks
from control.payments import checkout as payments_checkout
from control.payments import history as payments_history
from control.payments import invoices as payments_invoices
from control.payments import lowbalance, packs
from control.payments import refunds as payments_refunds
from control.payments import webhook as stripe_events
from control.payments.lowbalance import LowBalance
from control.payments.recharger import Recharger
from control.payments.stripeapi import StripeApi
from control.store.edges import EdgeRegistry
from control.store.outbox import Outbox
from control.store.state import ControlState
from control.store.wallet import DatabaseWallet
from control.ui import routes as ui
from control.ui.sessions import LOGIN_FAILURES, LOGIN_WINDOW_SECONDS

log = logging.getLogger(__name__)


ROUTES = [
    Route("/healthz", system.healthz, methods=["GET"]),
    Route("/readyz", system.readyz, methods=["GET"]),
    Route("/metrics", system.metrics, methods=["GET"]),
    Route("/v1/orgs", orgs.create_org, methods=["POST"]),
    Route("/v1/orgs", orgs.list_orgs, methods=["GET"]),
    Route("/v1/orgs/{org}", orgs.get_org, methods=["GET"]),
    Route("/v1/orgs/{org}", orgs.patch_org, methods=["PATCH"]),
    Route("/v1/orgs/{org}", orgs.close_org, methods=["DELETE"]),
    Route("/v1/orgs/{org}/keys", keys.create_key, methods=["POST"]),
    Route("/v1/orgs/{org}/keys", keys.list_keys, methods=["GET"]),
    Route("/v1/orgs/{org}/requests", usage.list_requests, methods=["GET"]),
    Route("/v1/orgs/{org}/usage", aggregates.org_usage, methods=["GET"]),
    Route("/v1/usage", aggregates.all_usage, methods=["GET"]),
    Route("/v1/orgs/{org}/credits", billing.grant_credits, methods=["POST"]),
    Route("/v1/orgs/{org}/balance", billing.get_balance, methods=["GET"]),
    Route("/v1/orgs/{org}/ledger", billing.get_ledger, methods=["GET"]),
    Route("/v1/orgs/{org}/tasks", billing.list_tasks, methods=["GET"]),
    Route("/v1/orgs/{org}/checkout", payments_checkout.create_checkout, methods=["POST"]),
    Route("/v1/orgs/{org}/payments", payments_history.list_payments, methods=["GET"]),
    Route(
        "/v1/orgs/{org}/payments/{payment}/refund",
        payments_refunds.refund_payment,
        methods=["POST"],
    ),
    Route("/v1/orgs/{org}/invoices", payments_invoices.list_invoices, methods=["GET"]),
    Route("/v1/orgs/{org}/low-balance", lowbalance.get_low_balance, methods=["GET"]),
    Route("/v1/orgs/{org}/low-balance", lowbalance.put_low_balance, methods=["PUT"]),
    Route("/v1/credit-packs", packs.list_packs, methods=["GET"]),
    Route("/v1/credit-packs/{pack}", packs.get_pack, methods=["GET"]),
    Route("/v1/credit-packs/{pack}", packs.put_pack, methods=["PUT"]),
    Route("/v1/credit-packs/{pack}", packs.delete_pack, methods=["DELETE"]),
    Route("/v1/orgs/{org}/export", export.export_org, methods=["GET"]),
    Route("/v1/orgs/{org}/webhooks", webhooks.create_webhook, methods=["POST"]),
    Route("/v1/orgs/{org}/webhooks", webhooks.list_webhooks, methods=["GET"]),
    Route("/v1/orgs/{org}/webhooks/{webhook}", webhooks.get_webhook, methods=["GET"]),
    Route("/v1/orgs/{org}/webhooks/{webhook}", webhooks.patch_webhook, methods=["PATCH"]),
    Route("/v1/orgs/{org}/webhooks/{webhook}", webhooks.delete_webhook, methods=["DELETE"]),
    Route("/v1/orgs/{org}/webhooks/{webhook}/rotate", webhooks.rotate_webhook, methods=["POST"]),
    Route(
        "/v1/orgs/{org}/webhooks/{webhook}/deliveries", webhooks.list_deliveries, methods=["GET"]
    ),
    Route(
        "/v1/orgs/{org}/webhooks/{webhook}/deliveries/{event}/redeliver",
        webhooks.redeliver,
        methods=["POST"],
    ),
    Route("/v1/keys/{key}", keys.get_key, methods=["GET"]),
    Route("/v1/keys/{key}", keys.patch_key, methods=["PATCH"]),
    Route("/v1/keys/{key}", keys.revoke_key, methods=["DELETE"]),
    Route("/v1/keys/{key}/rotate", keys.rotate_key, methods=["POST"]),
    Route("/v1/models", models.list_models, methods=["GET"]),
    Route("/v1/models/{family}", models.get_model, methods=["GET"]),
    Route("/v1/models/{family}", models.put_model, methods=["PUT"]),
    Route("/v1/models/{family}", models.patch_model, methods=["PATCH"]),
    Route("/v1/models/{family}", models.delete_model, methods=["DELETE"]),
    Route("/v1/audit", audit.list_audit, methods=["GET"]),
    Route("/v1/security-events", security.list_security_events, methods=["GET"]),
    Route("/v1/system", system.system_status, methods=["GET"]),
    Route("/v1/admin/tokens", system.create_admin_token, methods=["POST"]),
    Route("/v1/admin/tokens", system.list_admin_tokens, methods=["GET"]),
    Route("/v1/admin/tokens/{token}", system.revoke_admin_token, methods=["DELETE"]),
    Route("/v1/edge/snapshot", edgeapi.get_snapshot, methods=["GET"]),
    Route("/v1/edge/usage", edgeapi.post_usage, methods=["POST"]),
    Route("/v1/edge/events", edgeapi.post_event, methods=["POST"]),
    Route("/v1/edge/wallet/{op}", walletapi.wallet_call, methods=["POST"]),
]

# Called by others' services, not admins: signed by them, outside the admin API's document.
INTEGRATIONS = [
    Route("/v1/integrations/clerk/webhook", clerk.clerk_webhook, methods=["POST"]),
    Route("/v1/integrations/stripe/webhook", stripe_events.stripe_webhook, methods=["POST"]),
]

# The customer API: a Clerk session's org only, through the admin API's handlers
# (control/customers/routes.py).
CUSTOMER_ROUTES = customer.ROUTES

DOCUMENTED_ROUTES = [*ROUTES, *CUSTOMER_ROUTES]  # what /openapi.json describes


async def openapi(request: Request) -> Response:
    """The API's OpenAPI 3.1 document (the admin API's and the customer API's), from the route
    tables and the typed shapes."""
    global _DOCUMENT
    if _DOCUMENT is None:
        _DOCUMENT = json.dumps(document(DOCUMENTED_ROUTES), separators=(",", ":")).encode()
    return Response(_DOCUMENT, media_type="application/json")


_DOCUMENT: bytes | None = None


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "Error")
    response = error_response(ApiError(exc.status_code, code, str(exc.detail)))
    response.headers.update(exc.headers or {})  # e.g. Allow on a 405
    return response


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error in %s %s", request.method, request.url.path)
    return error_response(ApiError(500, "InternalError", "Internal error."))


def create_app(
    state: ControlState,
    metrics: Callable[[], dict[str, int]] = dict,
    wallet: DatabaseWallet | None = None,
    deliverer: Deliverer | None = None,
    retention: Retention | None = None,
    canceller: UpstreamTasks | None = None,
    clerk_tokens: ClerkTokens | None = None,
    analytics: ProductAnalytics | None = None,
    admin_failures_per_minute: int = ADMIN_FAILURES_PER_MINUTE,
    stripe: StripeApi | None = None,
) -> Starlette:
    app = Starlette(
        routes=[
            *by_path(ROUTES),
            *INTEGRATIONS,
            *by_path(CUSTOMER_ROUTES),
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/docs", docs.docs_page, methods=["GET"]),
            Mount("/docs/assets", docs.assets()),
            ui.mount(),
            portal.mount(),
        ],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )
    app.state.control = state
    # Signs the login form's token (a restart only makes an open login form stale).
    app.state.ui_secret = secrets.token_bytes(32)
    app.state.ui_throttle = FailureThrottle(LOGIN_FAILURES, LOGIN_WINDOW_SECONDS)
    app.state.admin_throttle = FailureThrottle(admin_failures_per_minute, 60.0)
    app.state.wallet = wallet or DatabaseWallet(state)
    # The webhook worker: started by the process that runs the control plane (launch/runtime.py).
    app.state.deliverer = deliverer or Deliverer(state)
    app.state.outbox = Outbox(state, wake=app.state.deliverer.wake)
    # Payments: Stripe's client (unconfigured: checkout answers 503), the auto-recharge worker
    # (started by launch/control.py), and the low-balance watch every settlement reports to.
    app.state.stripe = stripe or StripeApi(None)
    app.state.recharger = Recharger(state, app.state.stripe, app.state.outbox)
    app.state.low_balance = LowBalance(app.state.outbox, app.state.recharger.wake)
    app.state.wallet.watch = app.state.low_balance
    app.state.metrics = metrics
    # Purges at once (`DELETE /v1/orgs/{org}?purge=now`) reach the video store through it.
    app.state.retention = retention or Retention(state)
    app.state.canceller = canceller  # closing an org cancels its queued tasks upstream
    app.state.edges = EdgeRegistry()  # what the edges last reported (GET /v1/system)
    app.state.clerk_tokens = clerk_tokens  # customers' sessions (None: no customer API)
    app.state.analytics = analytics  # product events to PostHog (None: none are sent)
    app.state.portal = None  # the portal's OIDC client, when configured (launch/control.py)
    return app
