"""The system: this control plane's version and policy version, the edges heard from (their
snapshot version and spool backlog), Redis as the edges see it, the retention job's last run,
the request log's day partitions on PostgreSQL."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from control.api import system
from control.ui.sessions import Session
from control.ui.web import call, render, signed_in


@signed_in
async def system_page(request: Request, session: Session) -> Response:
    status = await call(request, session, system.system_status)
    return render(request, "system.html", session, status=status)
