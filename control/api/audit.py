"""The audit log of admin actions, newest first."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from control.api import csvout
from control.api.access import admin_for
from control.api.rows import cut, time_clauses
from control.http import bad_request, decode_cursor, page_limit, rfc3339
from control.store import db as dbm
from control.store.state import ControlState


def audit_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "ts": rfc3339(row["ts"]),
        "actor": row["actor"],
        "action": row["action"],
        "target": row["target"],
        "detail": json.loads(row["detail"]),
    }


AUDIT_COLUMNS = ["id", "ts", "actor", "action", "target", "detail"]
# The filters `list_audit` takes, each matched exactly against its column.
AUDIT_FILTERS = ("action", "actor", "target")
MAX_FILTER_CHARS = 200


def audit_filters(request: Request) -> tuple[list[str], list[Any]]:
    """The SQL clauses (and their arguments) of the query's `action`, `actor`, `target`,
    `from` (inclusive) and `to` (exclusive); a bad value is a 400 naming it."""
    params = request.query_params
    clauses: list[str] = []
    args: list[Any] = []
    for name in AUDIT_FILTERS:
        if name in params:
            value = params[name]
            if not value or len(value) > MAX_FILTER_CHARS or not value.isprintable():
                raise bad_request(f"`{name}` must be 1 to {MAX_FILTER_CHARS} printable characters.")
            clauses.append(f"{name}=?")
            args.append(value)
    bounds, times = time_clauses(params)
    if len(times) == 2 and times[0] >= times[1]:
        raise bad_request("`from` must be before `to`.")
    return clauses + bounds, args + times


async def list_audit(request: Request) -> Response:
    """Admin actions, newest first, paged by an opaque cursor (CSV: every page); filtered by
    `action`, `actor`, `target`, `from`, `to`."""
    state: ControlState = request.app.state.control
    await admin_for(request)
    csv = csvout.wants_csv(request)
    limit = page_limit(request)
    clauses, args = audit_filters(request)
    where = "".join(f" AND {clause}" for clause in clauses)

    async def read(cursor: str | None) -> dict[str, Any]:
        before = decode_cursor(cursor, int)[0] if cursor else 2**62
        rows = await dbm.fetch_all(
            state.db,
            f"SELECT * FROM audit WHERE id<?{where} ORDER BY id DESC LIMIT ?",
            before,
            *args,
            limit + 1,
        )
        rows, next_cursor = cut(rows, limit, "id")
        return {"items": [audit_json(row) for row in rows], "next_cursor": next_cursor}

    if csv:
        return await csvout.stream_pages(request, AUDIT_COLUMNS, read, "audit")
    return JSONResponse(await read(request.query_params.get("cursor")))
