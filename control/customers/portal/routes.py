"""The portal's routes, listed in one place, mounted at /portal by control/app.py."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from control.customers.portal.pages import (
    billing,
    downloads,
    keys,
    purchases,
    settings,
    usage,
    webhooks,
)
from control.customers.portal.pages import signin as pages
from control.customers.portal.web import HERE, portal_headers
from control.http import by_path
from control.ui.web import SecurityHeaders

ROUTES = [
    Route("/", pages.home, methods=["GET"]),
    Route("/login", pages.login, methods=["GET"]),
    Route("/callback", pages.callback, methods=["GET"]),
    Route("/logout", pages.logout, methods=["POST"]),
    Route("/org", pages.switch_org, methods=["POST"]),
    Route("/keys", keys.keys_page, methods=["GET"]),
    Route("/keys", keys.create_key, methods=["POST"]),
    Route("/keys/{key}/rotate", keys.rotate_key, methods=["POST"]),
    Route("/keys/{key}/revoke", keys.confirm_revoke, methods=["GET"]),
    Route("/keys/{key}/revoke", keys.revoke_key, methods=["POST"]),
    Route("/keys/{key}/allowlist", keys.edit_allowlist, methods=["POST"]),
    Route("/usage", usage.usage_page, methods=["GET"]),
    Route("/usage.json", usage.usage_data, methods=["GET"]),
    Route("/billing", billing.billing_page, methods=["GET"]),
    Route("/billing/buy", purchases.buy, methods=["POST"]),
    Route("/billing/low-balance", purchases.set_low_balance, methods=["POST"]),
    Route("/webhooks", webhooks.webhooks_page, methods=["GET"]),
    Route("/webhooks", webhooks.create_webhook, methods=["POST"]),
    Route("/webhooks/{webhook}", webhooks.webhook_page, methods=["GET"]),
    Route("/webhooks/{webhook}/delete", webhooks.delete_webhook, methods=["POST"]),
    Route("/webhooks/{webhook}/rotate", webhooks.rotate_webhook, methods=["POST"]),
    Route("/webhooks/{webhook}/edit", webhooks.edit_webhook, methods=["POST"]),
    Route("/webhooks/{webhook}/deliveries/{event}/redeliver", webhooks.redeliver, methods=["POST"]),
    Route("/settings", settings.settings_page, methods=["GET"]),
    Route("/settings/retention", settings.set_retention, methods=["POST"]),
    Route("/settings/analytics", settings.set_analytics, methods=["POST"]),
    Route("/settings/close", settings.close_account, methods=["POST"]),
    Route("/export", downloads.download_export, methods=["GET"]),
    Route("/download/{what}", downloads.download_csv, methods=["GET"]),
]


def mount() -> Mount:
    """Everything under /portal, behind the dashboard's strict headers (see portal_headers)."""
    return Mount(
        "/portal",
        routes=[
            *by_path(ROUTES),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="portal-static"),
        ],
        middleware=[Middleware(SecurityHeaders, headers_for=portal_headers)],
    )
