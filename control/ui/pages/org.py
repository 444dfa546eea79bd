"""One org's keys tab: its facts and balance (shown above every tab), its keys with their limits
and allowlists, create (the secret shown once) and revoke. The org's other tabs (see
org_header.html) and the key's own page (key.py) live in modules of their own."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from control.api import billing, keys, orgs
from control.ui import web
from control.ui.sessions import Session
from control.ui.web import call, paged, render, signed_in


async def org_header(request: Request, session: Session, org_id: str) -> dict[str, Any]:
    """What every tab of the org page shows above its own content: the org and its balance."""
    where = {"org": org_id}
    org = await call(request, session, orgs.get_org, path_params=where)
    balance = await call(request, session, billing.get_balance, path_params=where)
    return {"org": org, "balance": balance}


@signed_in
async def org_page(request: Request, session: Session) -> Response:
    return await _keys_tab(request, session, None)


async def _keys_tab(
    request: Request, session: Session, created_key: dict[str, Any] | None
) -> Response:
    org_id = request.path_params["org"]
    where = {"org": org_id}
    header = await org_header(request, session, org_id)
    cursor, org_keys = await paged(request, session, keys.list_keys, path_params=where)
    return render(
        request,
        "org.html",
        session,
        **header,
        tab="keys",
        keys=org_keys,
        cursor=cursor,
        created_key=created_key,
    )


@signed_in
async def create_key(request: Request, session: Session) -> Response:
    form = await web.form_of(request, session)
    org_id = request.path_params["org"]
    body = {"name": str(form.get("name", "")).strip() or "key"}
    if form.get("environment") in ("live", "test"):
        body["environment"] = str(form["environment"])
    created = await call(request, session, keys.create_key, path_params={"org": org_id}, body=body)
    # The secret is in this one response (no-store) and nowhere else.
    return await _keys_tab(request, session, created)


@signed_in
async def revoke_key(request: Request, session: Session) -> Response:
    await web.form_of(request, session)
    key_id = request.path_params["key"]
    key = await call(
        request, session, keys.revoke_key, path_params={"key": key_id}, method="DELETE"
    )
    return RedirectResponse(f"/ui/orgs/{key['org_id']}", status_code=303)
