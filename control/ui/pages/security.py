"""Security events: refused authentications and addresses at the edges, newest first,
filtered by reason, client address, key, org and dates."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from control.api import security
from control.ui.filters import filtered_list
from control.ui.sessions import Session
from control.ui.web import render, signed_in
from proxy.core.security_events import REASONS

FILTERS = ("reason", "client_ip", "key_id", "org_id")


@signed_in
async def security_page(request: Request, session: Session) -> Response:
    listed = await filtered_list(request, session, security.list_security_events, FILTERS)
    return render(request, "security.html", session, **listed, reasons=sorted(REASONS))
