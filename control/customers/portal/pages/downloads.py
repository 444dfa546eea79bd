"""The portal's downloads: a list's CSV (`/portal/download/<list>`: requests, ledger, tasks,
payments, invoices) and the org's export (`/portal/export`, admins), streamed by the customer
API's own handlers as the signed-in customer. Only the lists named here can be downloaded."""

from __future__ import annotations

from starlette.responses import Response

from control.api.inprocess import api_error_of
from control.customers import routes as me
from control.customers.portal.calls import Visit, customer_page
from control.http import ApiError

CSV_LISTS = {
    "requests": me.list_requests,
    "ledger": me.get_ledger,
    "tasks": me.list_tasks,
    "payments": me.list_payments,
    "invoices": me.list_invoices,
}


@customer_page
async def download_csv(visit: Visit) -> Response:
    handler = CSV_LISTS.get(visit.request.path_params["what"])
    if handler is None:
        raise ApiError(404, "NotFound", "Nothing to download there.")
    query = dict(visit.request.query_params) | {"format": "csv"}
    return _streamed(await visit.invoke(handler, query=query))


@customer_page
async def download_export(visit: Visit) -> Response:
    """Everything NextAPI holds about the org, as the API's ZIP (its admins only)."""
    return _streamed(await visit.invoke(me.export_org))


def _streamed(response: Response) -> Response:
    if response.status_code >= 400:
        raise api_error_of(response)
    return response  # streamed as the API streams it, under the portal's strict headers
