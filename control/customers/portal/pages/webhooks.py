"""The portal's webhooks page: the org's endpoints for every member, each one's deliveries;
for its admins, add an endpoint (its signing secret shown once) and delete one. All through
the customer API's webhook routes (control/customers/routes.py)."""

from __future__ import annotations

from typing import Any

from starlette.responses import RedirectResponse, Response

from control.customers import routes as me
from control.customers.portal.calls import Visit, customer_page
from control.http import ApiError
from control.store.outbox import ALL_TASK_EVENTS, EVENT_TYPES
from control.ui.web import PAGE_SIZE

WEBHOOKS = "/portal/webhooks"
EVENT_CHOICES = (ALL_TASK_EVENTS, *EVENT_TYPES)


async def _listing(visit: Visit, **context: Any) -> Response:
    cursor, listed = await visit.paged(me.list_webhooks)
    status = 400 if context.get("error") else 200
    return visit.render(
        "webhooks.html",
        status,
        hooks=listed,
        cursor=cursor,
        event_choices=EVENT_CHOICES,
        saved=visit.request.query_params.get("saved"),
        **context,
    )


@customer_page
async def webhooks_page(visit: Visit) -> Response:
    return await _listing(visit)


@customer_page
async def create_webhook(visit: Visit) -> Response:
    form = await visit.form()
    events = [event for event in EVENT_CHOICES if form.get(f"event:{event}") == "on"]
    body: dict[str, Any] = {"url": form.get("url", "").strip()}
    if events:
        body["events"] = events
    try:
        created = await visit.call(me.create_webhook, body=body)
    except ApiError as refused:
        if refused.status not in (400, 409):
            raise
        return await _listing(visit, error=refused.message, typed_url=body["url"])
    return visit.render("webhook_secret.html", hook=created)


@customer_page
async def webhook_page(visit: Visit) -> Response:
    webhook_id = visit.request.path_params["webhook"]
    where = {"webhook": webhook_id}
    hook = await visit.call(me.get_webhook, path_params=where)
    cursor = visit.request.query_params.get("cursor")
    query = {"cursor": cursor, "limit": PAGE_SIZE}
    deliveries = await visit.call(me.list_deliveries, path_params=where, query=query)
    return visit.render("webhook.html", hook=hook, deliveries=deliveries, cursor=cursor)


@customer_page
async def delete_webhook(visit: Visit) -> Response:
    await visit.form()
    where = {"webhook": visit.request.path_params["webhook"]}
    await visit.call(me.delete_webhook, path_params=where, method="DELETE")
    return RedirectResponse(f"{WEBHOOKS}?saved=deleted", status_code=303)
