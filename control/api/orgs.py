"""Orgs: create, list, read, correct, close."""

from __future__ import annotations

import functools
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from control.api import csvout, rows, schemas, validate
from control.api.access import admin_for
from control.http import (
    bad_request,
    conflict,
    rfc3339,
)
from control.jobs.cancel import cancel_in_flight
from control.jobs.retention import Retention
from control.store import db as dbm
from control.store import orgs as store_orgs
from control.store.database import Queries, Row
from control.store.state import ControlState


def org_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "email": row["email"],
        "status": row["status"],
        "allowed_ips": dbm.loads(row["allowed_ips"]),
        "rate_limit": dbm.loads(row["rate_limit"]),
        "spend_limit": dbm.loads(row["spend_limit"]),
        "video_retention_days": row["video_retention_days"],
        "video_retention_min_days": row["video_retention_min_days"],
        "video_retention_max_days": row["video_retention_max_days"],
        "contact_name": row["contact_name"],
        "processing_objection": bool(row["processing_objection"]),
        "external_id": row["external_id"],
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
        "closed_at": rfc3339(row["closed_at"]),
    }


async def load_org(state: ControlState, org_id: str) -> Row:
    return await rows.load(state, "orgs", org_id, "Org")


async def require_open(tx: Queries, org_id: str) -> None:
    """Inside the write transaction that adds to the org (a key, a webhook): refused if the org
    is closed as that transaction reads it, so a closure committed since the request began is
    never followed by a working key or a delivering endpoint."""
    org = await dbm.fetch_one(
        tx, f"SELECT status FROM orgs WHERE id=?{tx.dialect.for_update}", org_id
    )  # locked: a closure on another control plane waits for this transaction, or it for that
    if org is None or org["status"] == "closed":
        raise conflict("The org is closed.")


def _flag(body: dict[str, Any], field: str) -> int:
    if not isinstance(body[field], bool):
        raise bad_request(f"`{field}` must be true or false.")
    return int(body[field])


def _days(field: str, body: dict[str, Any]) -> int:
    return validate.int_range(body[field], field, 1, 3650)


COLUMNS = validate.COLUMNS | {
    "contact_name": lambda body: validate.text(body, "contact_name"),
    # The data subject's objection to optional processing (privacy policy, "object").
    "processing_objection": lambda body: _flag(body, "processing_objection"),
    "email": lambda body: validate.email(body),
    **{
        field: functools.partial(_days, field)
        for field in (
            "video_retention_days",
            "video_retention_min_days",
            "video_retention_max_days",
        )
    },
}


def _bounds(org: Row | dict[str, Any], changes: dict[str, Any]) -> None:
    """The retention bounds customers choose within must be in order."""
    low = changes.get("video_retention_min_days", org["video_retention_min_days"])
    high = changes.get("video_retention_max_days", org["video_retention_max_days"])
    if low > high:
        raise bad_request(
            f"`video_retention_min_days` ({low}) must not exceed "
            f"`video_retention_max_days` ({high})."
        )


async def create_org(request: Request) -> JSONResponse:
    state: ControlState = request.app.state.control
    admin = await admin_for(request)
    body = await schemas.body_of(request, schemas.OrgCreate)
    values = {
        "allowed_ips": "[]",
        "rate_limit": "{}",
        "spend_limit": None,
        "video_retention_days": 7,
        # The bounds of the org's own choice (as migration 0018's column defaults).
        "video_retention_min_days": 1,
        "video_retention_max_days": 30,
        "contact_name": None,
        "processing_objection": 0,
        **validate.changes(body, COLUMNS),
    }
    _bounds(values, {})
    org_id = "org_" + secrets.token_hex(8)
    created = dbm.now()
    async with state.transaction() as tx:
        await tx.execute(
            "INSERT INTO orgs (id, name, email, allowed_ips, rate_limit, spend_limit, "
            "video_retention_days, video_retention_min_days, video_retention_max_days, "
            "contact_name, processing_objection, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                org_id,
                values["name"],
                values["email"],
                values["allowed_ips"],
                values["rate_limit"],
                values["spend_limit"],
                values["video_retention_days"],
                values["video_retention_min_days"],
                values["video_retention_max_days"],
                values["contact_name"],
                values["processing_objection"],
                created,
                created,
            ),
        )
        await state.audit(tx, admin.token_id, "org.create", org_id)
    await state.publish()
    return JSONResponse(org_json(await load_org(state, org_id)), status_code=201)


ORG_COLUMNS = [
    "id",
    "name",
    "email",
    "status",
    "contact_name",
    "video_retention_days",
    "created_at",
    "updated_at",
    "closed_at",
]


MAX_SEARCH_CHARS = 200


async def list_orgs(request: Request) -> Response:
    """Orgs, oldest first, paged; `q` searches names and ids (CSV: every page)."""
    state: ControlState = request.app.state.control
    await admin_for(request)
    csv = csvout.wants_csv(request)
    search = request.query_params.get("q", "").strip()
    if len(search) > MAX_SEARCH_CHARS:
        # SQLite refuses a LIKE pattern past 50,000 bytes; no name or id is anywhere near this.
        raise bad_request(f"`q` must be at most {MAX_SEARCH_CHARS} characters.")
    where, args = "TRUE", []
    if search:
        # LIKE's wildcards in the search are matched literally, and any case matches (SQLite's
        # LIKE, PostgreSQL's ILIKE).
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        like = state.db.dialect.like
        where, args = f"name {like} ? ESCAPE '\\' OR id {like} ? ESCAPE '\\'", [pattern, pattern]

    async def read(cursor: str | None) -> dict[str, Any]:
        return await rows.page(request, state, "orgs", org_json, where, *args, cursor=cursor)

    return await csvout.page_or_csv(request, csv, ORG_COLUMNS, read, "orgs")


async def get_org(request: Request) -> JSONResponse:
    state: ControlState = request.app.state.control
    await admin_for(request)
    return JSONResponse(org_json(await load_org(state, request.path_params["org"])))


async def patch_org(request: Request) -> JSONResponse:
    state: ControlState = request.app.state.control
    admin = await admin_for(request)
    org_id = request.path_params["org"]
    body = await schemas.body_of(request, schemas.OrgPatch)
    changes = validate.changes(body, COLUMNS)
    _bounds(await load_org(state, org_id), changes)
    validate.status(body, changes, ("active", "suspended"))
    await rows.update(
        state, admin, "orgs", org_id, changes, "org.update", list(body), check=_not_closed
    )
    return JSONResponse(org_json(await load_org(state, org_id)))


def _not_closed(org: Row) -> None:
    """On the org as the write transaction reads it: a closure committed since the request
    began is never undone by it (`status: active` would reopen the account)."""
    if org["status"] == "closed":
        raise conflict("A closed org cannot be changed.")


async def _close(state: ControlState, actor: str, org_id: str) -> bool:
    """Close the org and revoke its keys, unless it is closed already (by a request at the
    same time): once, with one audit entry and one cancellation of its tasks."""
    async with state.transaction() as tx:
        return await store_orgs.close(state, tx, actor, org_id)


async def close_org(request: Request) -> JSONResponse:
    """Close the account: every key stops at once; its data is purged after the closure period,
    or at once with `?purge=now` (billing records are kept for their own period)."""
    state: ControlState = request.app.state.control
    admin = await admin_for(request)
    org_id = request.path_params["org"]
    org = await load_org(state, org_id)
    purge = request.query_params.get("purge")
    if purge not in (None, "now"):
        raise bad_request("`purge` takes the value `now`.")
    in_flight: dict[str, Any] = {"cancelled": [], "left_running": []}
    if org["status"] != "closed" and await _close(state, admin.token_id, org_id):
        await state.publish()  # the edges refuse the org's keys from here on
        in_flight = await cancel_in_flight(
            state, request.app.state.wallet, request.app.state.canceller, org_id
        )
        if in_flight["cancelled"] or in_flight["left_running"]:
            async with state.transaction() as tx:
                await state.audit(tx, admin.token_id, "org.cancel_tasks", org_id, in_flight)
    if purge == "now":
        retention: Retention = request.app.state.retention
        await retention.purge_org(org_id, actor=admin.token_id)
    return JSONResponse({**org_json(await load_org(state, org_id)), "tasks": in_flight})
