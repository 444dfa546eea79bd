"""Webhook endpoints over the admin API: register (secret shown once), list, read, update,
disable, delete, rotate the secret; the delivery log and redelivery.

A signing secret must be kept to sign with, so unlike API keys it is stored as it is; the API
never shows it again after the call that made it.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from control.api import csvout, rows, schemas, validate
from control.api.access import admin_for
from control.api.orgs import load_org, require_open
from control.http import (
    ApiError,
    bad_request,
    conflict,
    decode_cursor,
    not_found,
    page_limit,
    rfc3339,
)
from control.store import db as dbm
from control.store.database import Row
from control.store.outbox import ALL_TASK_EVENTS, EVENT_TYPES, ORG_EVENT_TYPES
from control.store.state import ControlState
from proxy.core.webhook_signatures import new_secret


def webhook_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "org_id": row["org_id"],
        "url": row["url"],
        "events": dbm.loads(row["events"]),
        "status": row["status"],
        "disabled_reason": row["disabled_reason"],
        "failing_since": rfc3339(row["failing_since"]),
        "previous_secret_valid_until": rows.grace_end(row["previous_valid_until"]),
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
    }


def endpoint_url(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 2048:
        raise bad_request("`url` must be an http(s) URL of at most 2048 characters.")
    validate.no_control(value, "url")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_request("`url` must be an http(s) URL.")
    if parts.username or parts.password:
        raise bad_request("`url` must not carry credentials.")
    return value


def event_types(value: Any) -> list[str] | None:
    """None: the endpoint hears only of tasks that name it as their `callback_url`."""
    if value is None:
        return None
    allowed = {*EVENT_TYPES, ALL_TASK_EVENTS, *ORG_EVENT_TYPES}
    if not isinstance(value, list) or not all(isinstance(e, str) and e in allowed for e in value):
        raise bad_request(f"`events` must be a list of: {', '.join(sorted(allowed))}.")
    return sorted(set(value))


COLUMNS: dict[str, validate.Column] = {
    "url": lambda body: endpoint_url(body["url"]),
    "events": lambda body: dbm.dumps(event_types(body["events"])),
}


async def load_webhook(state: ControlState, org_id: str, webhook_id: str) -> Row:
    row = await rows.load(state, "webhooks", webhook_id, "Webhook")
    if row["org_id"] != org_id or row["status"] == "deleted":
        raise not_found("Webhook")
    return row


async def create_webhook(request: Request) -> JSONResponse:
    """Register an endpoint; its signing secret (`whsec_…`) is returned this once only."""
    state: ControlState = request.app.state.control
    admin = await admin_for(request)
    org_id = request.path_params["org"]
    body = await schemas.body_of(request, schemas.WebhookCreate)
    await load_org(state, org_id)
    url = endpoint_url(body["url"])
    events = event_types(body.get("events"))
    webhook_id, secret, now = "wh_" + secrets.token_hex(8), new_secret(), dbm.now()
    async with state.transaction() as tx:
        await require_open(tx, org_id)
        taken = await dbm.fetch_one(
            tx, "SELECT id FROM webhooks WHERE org_id=? AND url=?", org_id, url
        )
        if taken is not None:
            raise ApiError(409, "Conflict", f"That URL is registered already ({taken['id']}).")
        await tx.execute(
            "INSERT INTO webhooks (id, org_id, url, events, secret, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (webhook_id, org_id, url, dbm.dumps(events), secret, now, now),
        )
        await state.audit(tx, admin.token_id, "webhook.create", webhook_id, {"org_id": org_id})
    await state.publish()
    row = await load_webhook(state, org_id, webhook_id)
    return JSONResponse(webhook_json(row) | {"secret": secret}, status_code=201)


async def list_webhooks(request: Request) -> JSONResponse:
    state: ControlState = request.app.state.control
    await admin_for(request)
    org_id = request.path_params["org"]
    await load_org(state, org_id)
    page = await rows.page(
        request, state, "webhooks", webhook_json, "org_id=? AND status!='deleted'", org_id
    )
    return JSONResponse(page)


async def get_webhook(request: Request) -> JSONResponse:
    state: ControlState = request.app.state.control
    await admin_for(request)
    params = request.path_params
    return JSONResponse(webhook_json(await load_webhook(state, params["org"], params["webhook"])))


async def patch_webhook(request: Request) -> JSONResponse:
    """Change the URL or the events, or disable / enable the endpoint."""
    state: ControlState = request.app.state.control
    admin = await admin_for(request)
    org_id, webhook_id = request.path_params["org"], request.path_params["webhook"]
    body = await schemas.body_of(request, schemas.WebhookPatch)
    await load_webhook(state, org_id, webhook_id)
    changes = validate.changes(body, COLUMNS)
    validate.status(body, changes, ("enabled", "disabled"))
    if "status" in changes:
        changes["disabled_reason"] = (
            "disabled by an admin" if body["status"] == "disabled" else None
        )
        changes["failing_since"] = None

    def check(hook: Row) -> None:
        """On the endpoint as the write transaction reads it: one deleted since the request
        began stays deleted (`status: enabled` would bring it back)."""
        if hook["status"] == "deleted":
            raise not_found("Webhook")

    await rows.update(
        state, admin, "webhooks", webhook_id, changes, "webhook.update", list(body), check=check
    )
    return JSONResponse(webhook_json(await load_webhook(state, org_id, webhook_id)))


async def delete_webhook(request: Request) -> JSONResponse:
    """Delete an endpoint: nothing more is delivered to it; its pending events fail."""
    state: ControlState = request.app.state.control
    admin = await admin_for(request)
    org_id, webhook_id = request.path_params["org"], request.path_params["webhook"]
    await load_webhook(state, org_id, webhook_id)
    async with state.transaction() as tx:
        # The row stays (as `deleted`) so that its delivery history still reads; deleted once
        # (and audited once) whoever else deletes it at the same time.
        cursor = await tx.execute(
            "UPDATE webhooks SET status='deleted', updated_at=? WHERE id=? AND status!='deleted'",
            (dbm.now(), webhook_id),
        )
        if not cursor.rowcount:
            raise not_found("Webhook")
        await tx.execute(
            "UPDATE webhook_events SET status='failed', updated_at=? "
            "WHERE webhook_id=? AND status='pending'",
            (dbm.now(), webhook_id),
        )
        await state.audit(tx, admin.token_id, "webhook.delete", webhook_id, {"org_id": org_id})
    await state.publish()
    return JSONResponse({"id": webhook_id, "deleted": True})


ROTATED_MEANWHILE = (
    "The signing secret was rotated by another request while this one was being made; that "
    "request holds the new secret. Read the endpoint, and rotate again if another new secret "
    "is still wanted."
)


async def rotate_webhook(request: Request) -> JSONResponse:
    """A new signing secret; the old one goes on signing beside it for `grace_seconds`."""
    state: ControlState = request.app.state.control
    admin = await admin_for(request)
    org_id, webhook_id = request.path_params["org"], request.path_params["webhook"]
    body = await schemas.body_of(request, schemas.WebhookRotate)
    grace = validate.grace_seconds(body, 86400)
    seen = await load_webhook(state, org_id, webhook_id)
    secret, now = new_secret(), dbm.now()
    async with state.transaction() as tx:
        # As the key rotation does (control/api/keys.py): applied to the secret the endpoint
        # had when the request came, else refused, so that a rotation that got in first keeps
        # the grace it promised for the old secret and its new secret stays the one signing.
        hook = await dbm.fetch_one(
            tx,
            f"SELECT status, secret FROM webhooks WHERE id=?{tx.dialect.for_update}",
            webhook_id,
        )
        if hook is None or hook["status"] == "deleted":
            raise not_found("Webhook")
        if hook["secret"] != seen["secret"]:
            raise conflict(ROTATED_MEANWHILE)
        await tx.execute(
            "UPDATE webhooks SET secret=?, previous_secret=?, previous_valid_until=?, "
            "updated_at=? WHERE id=?",
            (
                secret,
                hook["secret"] if grace else None,
                now + grace if grace else None,
                now,
                webhook_id,
            ),
        )
        detail = {"grace_seconds": grace}
        await state.audit(tx, admin.token_id, "webhook.rotate", webhook_id, detail)
    row = await load_webhook(state, org_id, webhook_id)
    return JSONResponse(webhook_json(row) | {"secret": secret})


DELIVERY_COLUMNS = [
    "event_id",
    "type",
    "task_id",
    "attempted_at",
    "status",
    "latency_ms",
    "error",
    "event_status",
    "event_attempts",
]


async def list_deliveries(request: Request) -> Response:
    """Every attempt to deliver to the endpoint, newest first: time, status, latency, error,
    and the event's own status and number of attempts; paged by an opaque cursor (CSV: every
    page)."""
    state: ControlState = request.app.state.control
    await admin_for(request)
    org_id, webhook_id = request.path_params["org"], request.path_params["webhook"]
    csv = csvout.wants_csv(request)
    limit = page_limit(request)
    await load_webhook(state, org_id, webhook_id)

    async def read(cursor: str | None) -> dict[str, Any]:
        before = decode_cursor(cursor, int)[0] if cursor else 2**63 - 1
        attempts = await dbm.fetch_all(
            state.db,
            "SELECT a.*, e.type, e.task_id, e.status AS event_status, "
            "(SELECT COUNT(*) FROM webhook_attempts n WHERE n.event_id = a.event_id) AS tries "
            "FROM webhook_attempts a JOIN webhook_events e ON e.id = a.event_id "
            "WHERE a.webhook_id=? AND a.id<? ORDER BY a.id DESC LIMIT ?",
            webhook_id,
            before,
            limit + 1,
        )
        kept, next_cursor = rows.cut(attempts, limit, "id")
        return {"items": [_delivery_json(a) for a in kept], "next_cursor": next_cursor}

    return await csvout.page_or_csv(request, csv, DELIVERY_COLUMNS, read, "deliveries")


def _delivery_json(attempt: Row) -> dict[str, Any]:
    return {
        "event_id": attempt["event_id"],
        "type": attempt["type"],
        "task_id": attempt["task_id"],
        "attempted_at": rfc3339(attempt["attempted_at"]),
        "status": attempt["status"],
        "latency_ms": attempt["latency_ms"],
        "error": attempt["error"],
        "event_status": attempt["event_status"],
        "event_attempts": attempt["tries"],
    }


async def redeliver(request: Request) -> JSONResponse:
    """Send an event again, whatever became of it."""
    state: ControlState = request.app.state.control
    admin = await admin_for(request)
    params = request.path_params
    await load_webhook(state, params["org"], params["webhook"])
    event = await dbm.fetch_one(
        state.db,
        "SELECT id FROM webhook_events WHERE id=? AND webhook_id=?",
        params["event"],
        params["webhook"],
    )
    if event is None or not await request.app.state.deliverer.redeliver(event["id"]):
        raise not_found("Event")
    async with state.transaction() as tx:
        await state.audit(
            tx, admin.token_id, "webhook.redeliver", params["webhook"], {"event_id": event["id"]}
        )
    return JSONResponse({"id": event["id"], "status": "pending"}, status_code=202)
