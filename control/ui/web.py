"""What every dashboard page shares: strict headers, templates, the session cookie, CSRF, and
calls into the admin API's own handlers on behalf of the signed-in session."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from control.api.access import SESSION_ADMIN
from control.http import ApiError
from control.ui import sessions
from control.ui.sessions import Session

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")

# No inline script or style anywhere, no eval: htmx is configured for it (base.html's meta).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class SecurityHeaders:
    """ASGI middleware: the strict headers on every response under /ui/."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def utc(value: str | float | None) -> str:
    """A time as `YYYY-MM-DD HH:MM:SS` in UTC (the page labels the zone)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        moment = datetime.fromtimestamp(value, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def timestamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def credits(micro: int | None) -> str:
    """Micro-credits as credits with six decimals (integers all the way)."""
    if micro is None:
        return "—"
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(int(micro)), 1_000_000)
    return f"{sign}{whole:,}.{frac:06d}"


templates.env.filters["utc"] = utc
templates.env.filters["credits"] = credits


# --- the session cookie ------------------------------------------------------------------------


def cookie_name(request: Request) -> str:
    # `__Host-` binds the cookie to this origin, over TLS only (browsers refuse it otherwise).
    return "__Host-nextapi_session" if request.url.scheme == "https" else "nextapi_session"


def login_cookie_name(request: Request) -> str:
    return "__Host-nextapi_login" if request.url.scheme == "https" else "nextapi_login"


def cookie_path(request: Request, path: str) -> str:
    return "/" if request.url.scheme == "https" else path  # `__Host-` demands Path=/


def set_cookie(request: Request, response: Response, name: str, value: str, path: str) -> None:
    response.set_cookie(
        name,
        value,
        path=cookie_path(request, path),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def delete_cookie(request: Request, response: Response, name: str, path: str) -> None:
    response.delete_cookie(
        name,
        path=cookie_path(request, path),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


async def session_of(request: Request) -> Session | None:
    return await sessions.find(request.app.state.control, request.cookies.get(cookie_name(request)))


def to_login() -> RedirectResponse:
    return RedirectResponse("/ui/login", status_code=303)


class Forbidden(Exception):
    """A state-changing request without the session's CSRF token."""


MAX_FORM_BYTES = 64 * 1024


async def posted(request: Request) -> dict[str, str]:
    """A posted urlencoded form (the only kind these pages send; no multipart parser needed)."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_FORM_BYTES:
            raise ApiError(413, "PayloadTooLarge", "The form is too large.")
    return {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}


async def form_of(request: Request, session: Session) -> Mapping[str, str]:
    """The posted form, once its CSRF token matches the session's."""
    form = await posted(request)
    if not session.csrf_matches(form.get("csrf_token")):
        raise Forbidden
    return form


def render(
    request: Request,
    name: str,
    session: Session | None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    context |= {"session": session, "nav": name.removesuffix(".html")}
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def page_url(path: str, **params: Any) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


templates.env.globals["page_url"] = page_url


# --- the admin API, called in-process ----------------------------------------------------------

Handler = Callable[[Request], Awaitable[Response]]


async def call(
    request: Request,
    session: Session,
    handler: Handler,
    path_params: dict[str, str] | None = None,
    query: dict[str, Any] | None = None,
    body: dict[str, Any] | None = None,
    method: str | None = None,
) -> Any:
    """The admin API handler's JSON answer, as the session's admin: the dashboard reads and
    writes through the same code (scopes, validation, audit) as `curl` does."""
    raw = json.dumps(body).encode() if body is not None else b""
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": method or ("POST" if body is not None else "GET"),
        "scheme": request.url.scheme,
        "path": request.url.path,
        "raw_path": request.url.path.encode(),
        "query_string": urlencode(
            {k: v for k, v in (query or {}).items() if v not in (None, "")}, doseq=True
        ).encode(),
        "headers": [(b"content-type", b"application/json")],
        "client": request.client,
        "server": request.scope.get("server"),
        "app": request.app,
        "path_params": path_params or {},
        SESSION_ADMIN: session.admin,
    }
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    response = await handler(Request(scope, receive))
    if response.status_code >= 400:
        error = json.loads(bytes(response.body)).get("error", {})
        raise ApiError(response.status_code, error.get("code", "Error"), error.get("message", ""))
    return json.loads(bytes(response.body))
