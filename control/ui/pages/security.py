"""Security events: refused authentications and addresses at the edges, newest first,
filtered by reason, client address, key, org and dates."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from control.api import security
from control.http import ApiError
from control.ui.filters import BadFilter, day_range, texts
from control.ui.sessions import Session
from control.ui.web import PAGE_SIZE, call, render, signed_in
from proxy.auth.security import REASONS

FILTERS = ("reason", "client_ip", "key_id", "org_id")


@signed_in
async def security_page(request: Request, session: Session) -> Response:
    params = request.query_params
    cursor = params.get("cursor")
    shown = texts(params, FILTERS)
    shown |= {k: params.get(k, "").strip() for k in ("from", "to") if params.get(k, "").strip()}
    found: dict[str, Any] = {"items": [], "next_cursor": None}
    problem = None
    api: dict[str, str] = {}
    try:
        api = texts(params, FILTERS) | day_range(params).query
        query = api | {"cursor": cursor, "limit": PAGE_SIZE}
        found = await call(request, session, security.list_security_events, query=query)
    except BadFilter as exc:
        problem = str(exc)
    except ApiError as exc:
        if exc.status != 400:
            raise
        problem = exc.message
    return render(
        request,
        "security.html",
        session,
        found=found,
        cursor=cursor,
        shown=shown,
        api=api,
        problem=problem,
        reasons=sorted(REASONS),
    )
