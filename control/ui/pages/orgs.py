"""The orgs list (searchable, paged) and creating an org."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from control.api import billing, orgs
from control.ui import web
from control.ui.sessions import Session
from control.ui.web import PAGE_SIZE, call, render, signed_in


@signed_in
async def orgs_page(request: Request, session: Session) -> Response:
    search = request.query_params.get("q", "")
    cursor = request.query_params.get("cursor")
    found = await call(
        request, session, orgs.list_orgs, query={"q": search, "cursor": cursor, "limit": PAGE_SIZE}
    )
    balances = {}
    for org in found["items"]:
        balances[org["id"]] = await call(
            request, session, billing.get_balance, path_params={"org": org["id"]}
        )
    name = "orgs_table.html" if request.headers.get("hx-request") else "orgs.html"
    return render(
        request, name, session, found=found, balances=balances, search=search, cursor=cursor
    )


@signed_in
async def create_org(request: Request, session: Session) -> Response:
    form = await web.form_of(request, session)
    body = {"name": str(form.get("name", "")).strip(), "email": str(form.get("email", "")).strip()}
    org = await call(request, session, orgs.create_org, body=body)
    return RedirectResponse(f"/ui/orgs/{org['id']}", status_code=303)
