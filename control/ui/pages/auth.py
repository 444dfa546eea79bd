"""Signing in and out, and the dashboard's own error pages."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from control.api.throttle import FailureThrottle
from control.http import ApiError
from control.store.adminauth import Admin
from control.ui import sessions, web
from control.ui.web import render, to_login

GENERIC_LOGIN_ERROR = "Sign-in failed."


def _login_mac(request: Request, nonce: str) -> str:
    secret: bytes = request.app.state.ui_secret
    digest = hmac.new(secret, b"nextapi-login:" + nonce.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign_login_token(request: Request, nonce: str) -> str:
    return f"{nonce}.{_login_mac(request, nonce)}"


def login_token_signed(request: Request, token: str) -> bool:
    nonce, _, mac = token.rpartition(".")
    return bool(nonce) and hmac.compare_digest(mac, _login_mac(request, nonce))


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def login_page(request: Request) -> Response:
    if await web.session_of(request) is not None:
        return RedirectResponse("/ui/", status_code=303)
    return _login_form(request, None)


def _login_form(request: Request, error: str | None, status_code: int = 200) -> Response:
    # Double-submit: the form's token must equal this cookie's (SameSite=Strict), so another
    # site cannot post a login of its own choosing; and it must be one this server signed, so
    # a cookie planted by someone else (a sibling subdomain, a plain-HTTP hop) is no use either.
    token = sign_login_token(request, secrets.token_urlsafe(24))
    response = render(request, "login.html", None, status_code, error=error, csrf_token=token)
    web.set_cookie(request, response, web.login_cookie_name(request), token, "/ui/login")
    return response


async def login(request: Request) -> Response:
    state = request.app.state.control
    throttle: FailureThrottle = request.app.state.ui_throttle
    form = await web.posted(request)
    presented = form.get("csrf_token")
    expected = request.cookies.get(web.login_cookie_name(request))
    if not expected or not presented or not secrets.compare_digest(presented, expected):
        return await forbidden(request)
    if not login_token_signed(request, presented):
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


async def forbidden(request: Request) -> Response:
    return render(request, "forbidden.html", None, 403)


async def api_error(request: Request, exc: ApiError) -> Response:
    session = await web.session_of(request)
    return render(request, "error.html", session, exc.status, error=exc)
