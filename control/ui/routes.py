"""The dashboard's routes, listed in one place, mounted at /ui by control/app.py."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from control.http import ApiError, by_path
from control.ui.pages import (
    account,
    audit,
    auth,
    billing,
    downloads,
    key,
    org,
    orgs,
    orgsecurity,
    overview,
    packs,
    security,
    system,
    usage,
    webhooks,
)
from control.ui.web import HERE, Forbidden, Handler, SecurityHeaders

ROUTES = [
    Route("/", overview.overview, methods=["GET"]),
    Route("/overview.json", overview.overview_data, methods=["GET"]),
    Route("/login", auth.login_page, methods=["GET"]),
    Route("/login", auth.login, methods=["POST"]),
    Route("/logout", auth.logout, methods=["POST"]),
    Route("/orgs", orgs.orgs_page, methods=["GET"]),
    Route("/orgs", orgs.create_org, methods=["POST"]),
    Route("/orgs/{org}", org.org_page, methods=["GET"]),
    Route("/orgs/{org}/keys", org.create_key, methods=["POST"]),
    Route("/keys/{key}/revoke", org.revoke_key, methods=["POST"]),
    Route("/keys/{key}", key.key_page, methods=["GET"]),
    Route("/keys/{key}", key.update_key, methods=["POST"]),
    Route("/keys/{key}/rotate", key.rotate_key, methods=["POST"]),
    Route("/orgs/{org}/billing", billing.billing_page, methods=["GET"]),
    Route("/orgs/{org}/credits", billing.grant_credits, methods=["POST"]),
    Route("/orgs/{org}/payments/{payment}/refund", billing.refund_payment, methods=["POST"]),
    Route("/orgs/{org}/account", account.account_page, methods=["GET"]),
    Route("/orgs/{org}/close", account.close_account, methods=["POST"]),
    Route("/orgs/{org}/usage", usage.usage_tab, methods=["GET"]),
    Route("/orgs/{org}/usage.json", usage.usage_data, methods=["GET"]),
    Route("/orgs/{org}/webhooks", webhooks.webhooks_tab, methods=["GET"]),
    Route("/orgs/{org}/webhooks", webhooks.create_webhook, methods=["POST"]),
    Route("/orgs/{org}/webhooks/{webhook}", webhooks.webhook_page, methods=["GET"]),
    Route("/orgs/{org}/webhooks/{webhook}/status", webhooks.set_webhook_status, methods=["POST"]),
    Route("/orgs/{org}/webhooks/{webhook}/delete", webhooks.delete_webhook, methods=["POST"]),
    Route(
        "/orgs/{org}/webhooks/{webhook}/deliveries/{event}/redeliver",
        webhooks.redeliver,
        methods=["POST"],
    ),
    Route("/orgs/{org}/security", orgsecurity.security_tab, methods=["GET"]),
    Route("/packs", packs.packs_page, methods=["GET"]),
    Route("/packs", packs.put_pack, methods=["POST"]),
    Route("/packs/{pack}/delete", packs.confirm_delete, methods=["GET"]),
    Route("/packs/{pack}/delete", packs.delete_pack, methods=["POST"]),
    Route("/audit", audit.audit_page, methods=["GET"]),
    Route("/security", security.security_page, methods=["GET"]),
    Route("/system", system.system_page, methods=["GET"]),
    Route("/download", downloads.download, methods=["GET"]),
]


def _guarded(handler: Handler) -> Handler:
    """The dashboard's own answers to the API's errors (a page, not JSON) and to a bad CSRF."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except Forbidden:
            return await auth.forbidden(request)
        except ApiError as exc:
            return await auth.api_error(request, exc)

    return guarded


def mount() -> Mount:
    """Everything under /ui: the pages and the vendored static files, behind the strict headers."""
    guarded = [Route(r.path, _guarded(r.endpoint), methods=r.methods) for r in ROUTES]
    return Mount(
        "/ui",
        routes=[
            *by_path(guarded),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="ui-static"),
        ],
        middleware=[Middleware(SecurityHeaders)],
    )
