"""The audit log: admin actions, newest first."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from control.api import audit
from control.ui.sessions import Session
from control.ui.web import PAGE_SIZE, call, render, signed_in


@signed_in
async def audit_page(request: Request, session: Session) -> Response:
    cursor = request.query_params.get("cursor")
    found = await call(
        request, session, audit.list_audit, query={"cursor": cursor, "limit": PAGE_SIZE}
    )
    return render(request, "audit.html", session, found=found, cursor=cursor)
