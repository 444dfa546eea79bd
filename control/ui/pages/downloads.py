"""Downloads: every table's CSV, and an org's export, streamed by the admin API's own handlers
as the signed-in admin. `GET /ui/download?path=/v1/…&…` names the API path it wants; only the
paths listed here can be named, so the dashboard offers no door the API does not."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from control.aggregates import api as aggregates
from control.api import audit, billing, export, keys, orgs, security, usage, webhooks
from control.api.inprocess import api_error_of
from control.http import ApiError
from control.payments import history, invoices
from control.ui.sessions import Session
from control.ui.web import invoke, signed_in

# The API's CSV lists (asked for with format=csv) and the org's export (a ZIP).
DOWNLOADABLE = [
    Route("/v1/orgs/{org}/keys", keys.list_keys),
    Route("/v1/orgs", orgs.list_orgs),
    Route("/v1/orgs/{org}/requests", usage.list_requests),
    Route("/v1/orgs/{org}/usage", aggregates.org_usage),
    Route("/v1/usage", aggregates.all_usage),
    Route("/v1/orgs/{org}/ledger", billing.get_ledger),
    Route("/v1/orgs/{org}/tasks", billing.list_tasks),
    Route("/v1/orgs/{org}/payments", history.list_payments),
    Route("/v1/orgs/{org}/invoices", invoices.list_invoices),
    Route("/v1/orgs/{org}/export", export.export_org),
    Route("/v1/audit", audit.list_audit),
    Route("/v1/security-events", security.list_security_events),
    Route("/v1/orgs/{org}/webhooks/{webhook}/deliveries", webhooks.list_deliveries),
]


@signed_in
async def download(request: Request, session: Session) -> Response:
    params = dict(request.query_params)
    path = params.pop("path", "")
    for route in DOWNLOADABLE:
        match, child = route.matches({"type": "http", "path": path, "method": "GET"})
        if match is Match.FULL:
            if route.path != "/v1/orgs/{org}/export":
                params["format"] = "csv"
            response = await invoke(
                request, session, route.endpoint, path_params=child["path_params"], query=params
            )
            if response.status_code >= 400:
                raise api_error_of(response)
            return response  # streamed as the API streams it, under /ui's strict headers
    raise ApiError(404, "NotFound", "Nothing to download at that path.")
