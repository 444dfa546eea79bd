"""The portal's webhooks page: the org's endpoints for every member, each one's deliveries;
for its admins, add an endpoint (its signing secret shown once), rotate its secret (the new one
shown once, the old one signing beside it for the grace chosen), send an event again, and
delete one. All through
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
    return await _webhook(visit)


async def _webhook(visit: Visit, error: str | None = None) -> Response:
    webhook_id = visit.request.path_params["webhook"]
    where = {"webhook": webhook_id}
    hook = await visit.call(me.get_webhook, path_params=where)
    cursor = visit.request.query_params.get("cursor")
    query = {"cursor": cursor, "limit": PAGE_SIZE}
    deliveries = await visit.call(me.list_deliveries, path_params=where, query=query)
    saved = visit.request.query_params.get("saved")
    return visit.render(
        "webhook.html",
        400 if error else 200,
        hook=hook,
        deliveries=deliveries,
        cursor=cursor,
        saved=saved,
        event_choices=EVENT_CHOICES,
        error=error,
    )


@customer_page
async def edit_webhook(visit: Visit) -> Response:
    """Its URL and events (none ticked: only tasks that name it as their callback_url)."""
    form = await visit.form()
    webhook_id = visit.request.path_params["webhook"]
    events = [event for event in EVENT_CHOICES if form.get(f"event:{event}") == "on"]
    body: dict[str, Any] = {"url": form.get("url", "").strip(), "events": events or None}
    try:
        await visit.call(
            me.patch_webhook, path_params={"webhook": webhook_id}, body=body, method="PATCH"
        )
    except ApiError as refused:
        if refused.status not in (400, 409):
            raise
        return await _webhook(visit, error=refused.message)
    return RedirectResponse(f"{WEBHOOKS}/{webhook_id}?saved=edited", status_code=303)


@customer_page
async def rotate_webhook(visit: Visit) -> Response:
    form = await visit.form()
    grace = form.get("grace_seconds", "3600")
    body = {"grace_seconds": int(grace) if grace.isdigit() else grace}
    where = {"webhook": visit.request.path_params["webhook"]}
    rotated = await visit.call(me.rotate_webhook, path_params=where, body=body)
    return visit.render("webhook_secret.html", hook=rotated, rotated=True)


@customer_page
async def redeliver(visit: Visit) -> Response:
    await visit.form()
    params = visit.request.path_params
    where = {"webhook": params["webhook"], "event": params["event"]}
    await visit.call(me.redeliver, path_params=where, body={})
    return RedirectResponse(f"{WEBHOOKS}/{params['webhook']}?saved=redelivered", status_code=303)


@customer_page
async def delete_webhook(visit: Visit) -> Response:
    await visit.form()
    where = {"webhook": visit.request.path_params["webhook"]}
    await visit.call(me.delete_webhook, path_params=where, method="DELETE")
    return RedirectResponse(f"{WEBHOOKS}?saved=deleted", status_code=303)
