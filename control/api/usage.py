"""Usage records: the idempotent sink the spool ingests into, and the request log admins page."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from control.api import csvout
from control.api.access import admin_for
from control.api.orgs import load_org
from control.api.rows import newest_first
from control.api.security import store_events
from control.http import rfc3339
from control.jobs.abuse import suspend_abusers
from control.store.state import ControlState
from proxy.auth import security
from proxy.usage.records import FIELDS

log = logging.getLogger(__name__)

_INSERT = (
    f"INSERT OR IGNORE INTO usage ({', '.join(FIELDS)}) VALUES ({', '.join('?' for _ in FIELDS)})"
)


async def store_usage(state: ControlState, records: list[dict[str, Any]]) -> None:
    """Insert a batch of spooled records (usage records and security events) in one
    transaction; a record seen before (same request id) is ignored, so replaying a spool after a
    crash never counts a request twice."""
    usage = [record for record in records if "kind" not in record]
    events = [record for record in records if security.is_event(record)]
    if unknown := len(records) - len(usage) - len(events):
        # Only a newer edge's spool could hold another kind (an edge apart's batches are
        # checked first); never log the records themselves.
        log.warning("usage: %d records of an unknown kind ignored", unknown)
    rows = [tuple(record.get(field) for field in FIELDS) for record in usage]
    async with state.transaction() as tx:
        await tx.executemany(_INSERT, rows)
        await store_events(tx, events)
    await suspend_abusers(state, usage, state.suspend_after_rate_limited)


def request_json(row: Any) -> dict[str, Any]:
    record = {field: row[field] for field in FIELDS}
    record["ts"] = rfc3339(row["ts"])
    record["id"] = record.pop("request_id")
    return record


REQUEST_COLUMNS = ["id" if field == "request_id" else field for field in FIELDS]


async def list_requests(request: Request) -> Response:
    """The org's request log, newest first, paged by an opaque cursor (CSV: every page)."""
    state: ControlState = request.app.state.control
    await admin_for(request)
    org_id = request.path_params["org"]
    csv = csvout.wants_csv(request)
    await load_org(state, org_id)

    async def read(cursor: str | None) -> dict[str, Any]:
        clauses = ["org_id=?"]
        return await newest_first(request, state, "usage", request_json, clauses, [org_id], cursor)

    if csv:
        return await csvout.stream_pages(request, REQUEST_COLUMNS, read, "requests")
    return JSONResponse(await read(request.query_params.get("cursor")))
