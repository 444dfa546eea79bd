"""One org's account tab: the export download (everything held about the org, as the API's
ZIP) and closing the account, confirmed by typing the org's exact name."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from control.api import orgs
from control.ui import web
from control.ui.pages.org import org_header
from control.ui.sessions import Session
from control.ui.web import call, render, signed_in

NAME_MISMATCH = "The name typed does not match the org's name exactly; nothing was closed."


async def _account_tab(
    request: Request,
    session: Session,
    *,
    status_code: int = 200,
    close_error: str | None = None,
    closed: dict[str, Any] | None = None,
) -> Response:
    header = await org_header(request, session, request.path_params["org"])
    return render(
        request,
        "org_account.html",
        session,
        status_code,
        **header,
        tab="account",
        close_error=close_error,
        closed=closed,
    )


@signed_in
async def account_page(request: Request, session: Session) -> Response:
    return await _account_tab(request, session)


@signed_in
async def close_account(request: Request, session: Session) -> Response:
    form = await web.form_of(request, session)
    where = {"org": request.path_params["org"]}
    org = await call(request, session, orgs.get_org, path_params=where)
    # Checked here, before the API is called: a slip of the keyboard closes nothing.
    if form.get("confirm_name") != org["name"]:
        return await _account_tab(request, session, status_code=400, close_error=NAME_MISMATCH)
    closed = await call(request, session, orgs.close_org, path_params=where, method="DELETE")
    return await _account_tab(request, session, closed=closed)
