"""The dashboard's pages and actions: each reads and writes through the admin API's handlers."""

from __future__ import annotations

import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from control.api import aggregates, audit, billing, keys, orgs, usage
from control.http import ApiError, rfc3339
from control.store.adminauth import Admin
from control.ui import sessions, web
from control.ui.web import Forbidden, call, render, to_login

PAGE_SIZE = 25
# The overview's ranges: how far back, and the bucket each point stands for.
RANGES = {"24h": (86400, "hour"), "7d": (7 * 86400, "hour"), "30d": (30 * 86400, "day")}
RANGES["90d"] = (90 * 86400, "day")
GENERIC_LOGIN_ERROR = "Sign-in failed."


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# --- login and logout --------------------------------------------------------------------------


async def login_page(request: Request) -> Response:
    if await web.session_of(request) is not None:
        return RedirectResponse("/ui/", status_code=303)
    return _login_form(request, None)


def _login_form(request: Request, error: str | None, status_code: int = 200) -> Response:
    # Double-submit: the form's token must equal this cookie's (SameSite=Strict), so another
    # site cannot post a login of its own choosing.
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", None, status_code, error=error, csrf_token=token)
    web.set_cookie(request, response, web.login_cookie_name(request), token, "/ui/login")
    return response


async def login(request: Request) -> Response:
    state = request.app.state.control
    throttle: sessions.LoginThrottle = request.app.state.ui_throttle
    form = await web.posted(request)
    presented = form.get("csrf_token")
    expected = request.cookies.get(web.login_cookie_name(request))
    if not expected or not presented or not secrets.compare_digest(presented, expected):
        return await forbidden(request)
    address = _client(request)
    token = form.get("token")
    admin: Admin | None = None
    if not throttle.blocked(address) and token and token.strip():
        try:
            admin = await state.admin.authenticate("Bearer " + token.strip())
        except ApiError:
            admin = None
    if admin is None or not ({"admin", "read"} & set(admin.scopes)):
        throttle.failed(address)
        async with state.transaction() as tx:
            await state.audit(tx, "ui", "ui.login_failed", None, {"client_ip": address})
        return _login_form(request, GENERIC_LOGIN_ERROR, status_code=401)
    session_id = await sessions.start(state, admin)
    response = RedirectResponse("/ui/", status_code=303)
    web.set_cookie(request, response, web.cookie_name(request), session_id, "/ui")
    web.delete_cookie(request, response, web.login_cookie_name(request), "/ui/login")
    return response


async def logout(request: Request) -> Response:
    session = await web.session_of(request)
    if session is None:
        return to_login()
    await web.form_of(request, session)
    await sessions.end(request.app.state.control, session)
    response = to_login()
    web.delete_cookie(request, response, web.cookie_name(request), "/ui")
    return response


# --- overview ----------------------------------------------------------------------------------


async def overview(request: Request) -> Response:
    session = await web.session_of(request)
    if session is None:
        return to_login()
    chosen = request.query_params.get("range", "24h")
    chosen = chosen if chosen in RANGES else "24h"
    return render(request, "overview.html", session, ranges=list(RANGES), chosen=chosen)


async def overview_data(request: Request) -> Response:
    """The overview's series for uPlot: columns of the usage aggregates over the range."""
    session = await web.session_of(request)
    if session is None:
        return JSONResponse({"error": "signed out"}, status_code=401)
    seconds, unit = RANGES.get(request.query_params.get("range", "24h"), RANGES["24h"])
    now = time.time()
    query = {"from": rfc3339(now - seconds), "to": rfc3339(now), "interval": unit}
    answer = await call(request, session, aggregates.all_usage, query=query)
    series: dict[str, list[Any]] = {
        name: []
        for name in ("t", "requests", "errors", "p50", "p95", "credits")  # uPlot's columns
    }
    for row in answer["items"]:
        series["t"].append(web.timestamp(row["start"]))
        series["requests"].append(row["requests"])
        series["errors"].append(row["errors_4xx"] + row["errors_5xx"])
        series["p50"].append(row["latency_p50_ms"])
        series["p95"].append(row["latency_p95_ms"])
        series["credits"].append(row["credits_charged"] / 1_000_000)
    window = {"from": web.timestamp(answer["from"]), "to": web.timestamp(answer["to"])}
    return JSONResponse({"unit": unit, "window": window, "series": series})


# --- orgs --------------------------------------------------------------------------------------


async def orgs_page(request: Request) -> Response:
    session = await web.session_of(request)
    if session is None:
        return to_login()
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


async def create_org(request: Request) -> Response:
    session = await web.session_of(request)
    if session is None:
        return to_login()
    form = await web.form_of(request, session)
    body = {"name": str(form.get("name", "")).strip(), "email": str(form.get("email", "")).strip()}
    org = await call(request, session, orgs.create_org, body=body)
    return RedirectResponse(f"/ui/orgs/{org['id']}", status_code=303)


# --- one org -----------------------------------------------------------------------------------


async def org_page(request: Request, created_key: dict[str, Any] | None = None) -> Response:
    session = await web.session_of(request)
    if session is None:
        return to_login()
    org_id = request.path_params["org"]
    where = {"org": org_id}
    org = await call(request, session, orgs.get_org, path_params=where)
    balance = await call(request, session, billing.get_balance, path_params=where)
    org_keys = await call(
        request, session, keys.list_keys, path_params=where, query={"limit": 1000}
    )
    cursor = request.query_params.get("cursor")
    log = await call(
        request,
        session,
        usage.list_requests,
        path_params=where,
        query={"cursor": cursor, "limit": PAGE_SIZE},
    )
    return render(
        request,
        "org.html",
        session,
        org=org,
        balance=balance,
        keys=org_keys["items"],
        log=log,
        cursor=cursor,
        created_key=created_key,
    )


async def create_key(request: Request) -> Response:
    session = await web.session_of(request)
    if session is None:
        return to_login()
    form = await web.form_of(request, session)
    org_id = request.path_params["org"]
    body = {"name": str(form.get("name", "")).strip() or "key"}
    if form.get("environment") in ("live", "test"):
        body["environment"] = str(form["environment"])
    created = await call(request, session, keys.create_key, path_params={"org": org_id}, body=body)
    # The secret is in this one response (no-store) and nowhere else.
    return await org_page(request, created_key=created)


async def revoke_key(request: Request) -> Response:
    session = await web.session_of(request)
    if session is None:
        return to_login()
    await web.form_of(request, session)
    key_id = request.path_params["key"]
    key = await call(
        request, session, keys.revoke_key, path_params={"key": key_id}, method="DELETE"
    )
    return RedirectResponse(f"/ui/orgs/{key['org_id']}", status_code=303)


# --- audit -------------------------------------------------------------------------------------


async def audit_page(request: Request) -> Response:
    session = await web.session_of(request)
    if session is None:
        return to_login()
    cursor = request.query_params.get("cursor")
    found = await call(
        request, session, audit.list_audit, query={"cursor": cursor, "limit": PAGE_SIZE}
    )
    return render(request, "audit.html", session, found=found, cursor=cursor)


# --- errors ------------------------------------------------------------------------------------


async def forbidden(request: Request) -> Response:
    return render(request, "forbidden.html", None, 403)


async def api_error(request: Request, exc: ApiError) -> Response:
    session = await web.session_of(request)
    return render(request, "error.html", session, exc.status, error=exc)


__all__ = ["Forbidden"]
