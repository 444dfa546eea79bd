"""One org's webhooks tab: its endpoints (create one, its secret shown once), and one
endpoint's page: its facts, disable/enable, delete (confirmed), and its deliveries, paged, each
with a redeliver button."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from control.api import webhooks
from control.http import ApiError
from control.store.outbox import ALL_TASK_EVENTS, EVENT_TYPES
from control.ui import web
from control.ui.pages.org import org_header
from control.ui.sessions import Session
from control.ui.web import call, paged, render, signed_in

# The events a new endpoint can hear of: every task event, or some; none means it hears only of
# tasks that name it as their callback_url.
EVENT_CHOICES = (ALL_TASK_EVENTS, *EVENT_TYPES)


@signed_in
async def webhooks_tab(request: Request, session: Session) -> Response:
    return await _list(request, session, None)


async def _list(request: Request, session: Session, created: dict[str, Any] | None) -> Response:
    org_id = request.path_params["org"]
    header = await org_header(request, session, org_id)
    cursor, found = await paged(
        request, session, webhooks.list_webhooks, path_params={"org": org_id}
    )
    return render(
        request,
        "org_webhooks.html",
        session,
        **header,
        tab="webhooks",
        found=found,
        cursor=cursor,
        created=created,
        event_choices=EVENT_CHOICES,
    )


@signed_in
async def create_webhook(request: Request, session: Session) -> Response:
    form = await web.form_of(request, session)
    org_id = request.path_params["org"]
    events = [event for event in EVENT_CHOICES if form.get(f"event:{event}") == "on"]
    body: dict[str, Any] = {"url": str(form.get("url", "")).strip()}
    if events:
        body["events"] = events
    created = await call(
        request, session, webhooks.create_webhook, path_params={"org": org_id}, body=body
    )
    # The secret is in this one response (no-store) and nowhere else.
    return await _list(request, session, created)


@signed_in
async def webhook_page(request: Request, session: Session) -> Response:
    org_id, webhook_id = request.path_params["org"], request.path_params["webhook"]
    where = {"org": org_id, "webhook": webhook_id}
    header = await org_header(request, session, org_id)
    hook = await call(request, session, webhooks.get_webhook, path_params=where)
    cursor, deliveries = await paged(request, session, webhooks.list_deliveries, path_params=where)
    return render(
        request,
        "org_webhook.html",
        session,
        **header,
        tab="webhooks",
        hook=hook,
        deliveries=deliveries,
        cursor=cursor,
    )


def _hook_url(org_id: str, webhook_id: str) -> str:
    return f"/ui/orgs/{org_id}/webhooks/{webhook_id}"


@signed_in
async def set_webhook_status(request: Request, session: Session) -> Response:
    form = await web.form_of(request, session)
    org_id, webhook_id = request.path_params["org"], request.path_params["webhook"]
    await call(
        request,
        session,
        webhooks.patch_webhook,
        path_params={"org": org_id, "webhook": webhook_id},
        body={"status": str(form.get("status", ""))},  # the API refuses anything else
        method="PATCH",
    )
    return RedirectResponse(_hook_url(org_id, webhook_id), status_code=303)


@signed_in
async def delete_webhook(request: Request, session: Session) -> Response:
    form = await web.form_of(request, session)
    org_id, webhook_id = request.path_params["org"], request.path_params["webhook"]
    if form.get("confirm") != webhook_id:
        raise ApiError(400, "InvalidParameter", "Type the webhook's id to delete it.")
    await call(
        request,
        session,
        webhooks.delete_webhook,
        path_params={"org": org_id, "webhook": webhook_id},
        method="DELETE",
    )
    return RedirectResponse(f"/ui/orgs/{org_id}/webhooks", status_code=303)


@signed_in
async def redeliver(request: Request, session: Session) -> Response:
    await web.form_of(request, session)
    params = request.path_params
    org_id, webhook_id = params["org"], params["webhook"]
    await call(
        request,
        session,
        webhooks.redeliver,
        path_params={"org": org_id, "webhook": webhook_id, "event": params["event"]},
        method="POST",
    )
    return RedirectResponse(_hook_url(org_id, webhook_id), status_code=303)
