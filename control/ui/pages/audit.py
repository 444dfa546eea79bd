"""The audit log: admin actions, newest first, filtered by action, actor, target and dates."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from control.api import audit
from control.http import ApiError
from control.ui.filters import BadFilter, day_range, texts
from control.ui.sessions import Session
from control.ui.web import PAGE_SIZE, call, render, signed_in

FILTERS = ("action", "actor", "target")


@signed_in
async def audit_page(request: Request, session: Session) -> Response:
    params = request.query_params
    cursor = params.get("cursor")
    shown = texts(params, FILTERS)  # what the form and the pager keep
    shown |= {k: params.get(k, "").strip() for k in ("from", "to") if params.get(k, "").strip()}
    found: dict[str, Any] = {"items": [], "next_cursor": None}
    problem = None
    api: dict[str, str] = {}
    try:
        api = texts(params, FILTERS) | day_range(params).query
        query = api | {"cursor": cursor, "limit": PAGE_SIZE}
        found = await call(request, session, audit.list_audit, query=query)
    except BadFilter as exc:
        problem = str(exc)
    except ApiError as exc:
        if exc.status != 400:
            raise
        problem = exc.message  # the API's own words for the bad filter
    return render(
        request,
        "audit.html",
        session,
        found=found,
        cursor=cursor,
        shown=shown,
        api=api,
        problem=problem,
    )
