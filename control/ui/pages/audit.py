"""The audit log: admin actions, newest first, filtered by action, actor, target and dates."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from control.api import audit
from control.ui.filters import filtered_list
from control.ui.sessions import Session
from control.ui.web import render, signed_in

FILTERS = ("action", "actor", "target")


@signed_in
async def audit_page(request: Request, session: Session) -> Response:
    listed = await filtered_list(request, session, audit.list_audit, FILTERS)
    return render(request, "audit.html", session, **listed)
