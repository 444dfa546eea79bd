"""The audit log of admin actions, newest first."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from control.api import csvout
from control.api.access import admin_for
from control.api.rows import columns_json, newest, time_clauses
from control.http import bad_request, page_limit
from control.store.state import ControlState

AUDIT_COLUMNS = ["id", "ts", "actor", "action", "target", "detail"]


def audit_json(row: Any) -> dict[str, Any]:
    return columns_json(row, AUDIT_COLUMNS, times=("ts",), stored=("detail",))


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

    async def read(cursor: str | None) -> dict[str, Any]:
        return await newest(state, "audit", audit_json, clauses, args, limit, cursor or None)

    return await csvout.page_or_csv(request, csv, AUDIT_COLUMNS, read, "audit")
