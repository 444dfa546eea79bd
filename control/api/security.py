"""Security events in the control plane: stored beside the usage records they travel with (in
the request log's file, control/store/requestlog.py), and
listed for admins (`GET /v1/security-events`) to trace failed authentications to an address, a
key or an org. Kept `retention_security_events_days` (90), see control/jobs/retention.py."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from control.api import csvout
from control.api.access import admin_for
from control.api.rows import newest_first
from control.http import bad_request, rfc3339
from control.store.database import Queries
from control.store.state import ControlState
from proxy.core.netaddr import parse_address
from proxy.core.security_events import FIELDS, REASONS


async def store_events(tx: Queries, records: list[dict[str, Any]]) -> None:
    """Within the caller's transaction of the request log; an event seen before (its request
    id; on PostgreSQL, whose log is partitioned by time, its request id and time) is ignored."""
    rows = [tuple(record.get(field) for field in FIELDS) for record in records]
    await tx.insert_new("security_events", FIELDS, rows)


def event_json(row: Any) -> dict[str, Any]:
    event = {field: row[field] for field in FIELDS}
    event["ts"] = rfc3339(row["ts"])
    event["id"] = event.pop("request_id")  # as in the request log: the request's X-Request-Id
    return event


EVENT_COLUMNS = ["id" if field == "request_id" else field for field in FIELDS]


async def list_security_events(request: Request) -> Response:
    """Security events (failed authentications, refused addresses), newest first, paged by an
    opaque cursor; filtered by `client_ip`, `key_id`, `org_id`, `reason`, `from`, `to`."""
    state: ControlState = request.app.state.control
    await admin_for(request)
    params = request.query_params
    csv = csvout.wants_csv(request)
    clauses: list[str] = []
    args: list[Any] = []
    if "client_ip" in params:
        address = parse_address(params["client_ip"])
        if address is None:
            raise bad_request("`client_ip` must be an IP address.")
        clauses.append("client_ip=?")
        args.append(str(address))  # stored as the edge wrote it: canonical, IPv4 unmapped
    if "reason" in params and params["reason"] not in REASONS:
        raise bad_request(f"`reason` must be one of {', '.join(sorted(REASONS))}.")
    for name in ("key_id", "org_id", "reason"):
        if name in params:
            clauses.append(f"{name}=?")
            args.append(params[name])

    async def read(cursor: str | None) -> dict[str, Any]:
        table = "security_events"
        return await newest_first(request, state.log, table, event_json, clauses, args, cursor)

    return await csvout.page_or_csv(request, csv, EVENT_COLUMNS, read, "security-events")
