"""What every dashboard page shares: strict headers, templates, the session cookie, CSRF, and
calls into the admin API's own handlers on behalf of the signed-in session."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Unpack
from urllib.parse import parse_qs, urlencode

from markupsafe import Markup
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from control.api import inprocess
from control.api.inprocess import Handler, Target
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


def _security_headers(scope: Scope) -> Mapping[str, str]:
    return SECURITY_HEADERS


class SecurityHeaders:
    """ASGI middleware: the strict headers on every response under /ui/ (and /portal/, whose
    forms may also lead to its identity provider: `headers_for` gives a mount its own)."""

    def __init__(
        self,
        app: ASGIApp,
        headers_for: Callable[[Scope], Mapping[str, str]] = _security_headers,
    ) -> None:
        self.app = app
        self.headers_for = headers_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers_for(scope).items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


PAGE_SIZE = 25


def _moment(value: str | float) -> datetime:
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    return datetime.fromtimestamp(value, UTC)


def utc(value: str | float | None) -> Markup | str:
    """A time as `<time>` holding `YYYY-MM-DD HH:MM:SS` in UTC; the column's header names the
    zone (`zone_label`), and app.js rewrites both when the viewer picks the browser's zone."""
    if value is None or value == "":
        return "—"
    moment = _moment(value)
    shown = moment.strftime("%Y-%m-%d %H:%M:%S")
    iso = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return Markup('<time datetime="{}">{}</time>').format(iso, shown)


def zone_label(title: str) -> Markup:
    """A time column's header: `Time (UTC)`, its zone in a span that app.js can rewrite."""
    return Markup('{} (<span class="zone">UTC</span>)').format(title)


def timestamp(value: str) -> float:
    """An RFC 3339 time of the API's answers as seconds since the epoch."""
    return _moment(value).timestamp()


def credits(micro: int | None) -> str:
    """Micro-credits as credits with six decimals (integers all the way)."""
    if micro is None:
        return "—"
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(int(micro)), 1_000_000)
    return f"{sign}{whole:,}.{frac:06d}"


templates.env.filters["utc"] = utc
templates.env.globals["zone_label"] = zone_label
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


SessionHandler = Callable[[Request, Session], Awaitable[Response]]


def signed_in(page: SessionHandler) -> Callable[[Request], Awaitable[Response]]:
    """A page for signed-in sessions only: without one, the browser is sent to sign in."""

    @functools.wraps(page)
    async def handler(request: Request) -> Response:
        session = await session_of(request)
        if session is None:
            return to_login()
        return await page(request, session)

    return handler


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


def page_url(base: str, /, **params: Any) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{base}?{urlencode(kept)}" if kept else base


def download_url(api_path: str, **params: Any) -> str:
    """The dashboard's link to the API's CSV of `api_path` (or an org's export), with filters."""
    return page_url("/ui/download", path=api_path, **params)


templates.env.globals["page_url"] = page_url
templates.env.globals["download_url"] = download_url


# --- the admin API, called in-process ----------------------------------------------------------


async def invoke(
    request: Request, session: Session, handler: Handler, **target: Unpack[Target]
) -> Response:
    """The admin API handler's answer, as the session's admin: the dashboard reads and writes
    through the same code (scopes, validation, audit) as `curl` does."""
    return await inprocess.invoke(request, session.admin, handler, **target)


async def call(
    request: Request, session: Session, handler: Handler, **target: Unpack[Target]
) -> Any:
    """The admin API handler's JSON answer (see `invoke`); an error answer raises ApiError."""
    return await inprocess.call(request, session.admin, handler, **target)


async def paged(
    request: Request,
    session: Session,
    handler: Handler,
    path_params: dict[str, str] | None = None,
    query: dict[str, Any] | None = None,
    cursor_param: str = "cursor",
) -> tuple[str | None, Any]:
    """One page (PAGE_SIZE rows) of an API list, from the cursor the page's own query string
    holds under `cursor_param`; returns that cursor (for the pager) and the page."""
    cursor = request.query_params.get(cursor_param)
    page_query = {**(query or {}), "cursor": cursor, "limit": PAGE_SIZE}
    return cursor, await call(request, session, handler, path_params=path_params, query=page_query)
