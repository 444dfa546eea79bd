"""The dashboard's routes, listed in one place, mounted at /ui by control/app.py."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from control.http import ApiError, by_path
from control.ui.pages import audit, auth, downloads, org, orgs, overview, security, system
from control.ui.web import HERE, Forbidden, Handler, SecurityHeaders

ROUTES = [
    Route("/", overview.overview, methods=["GET"]),
    Route("/overview.json", overview.overview_data, methods=["GET"]),
    Route("/login", auth.login_page, methods=["GET"]),
    Route("/login", auth.login, methods=["POST"]),
    Route("/logout", auth.logout, methods=["POST"]),
    Route("/orgs", orgs.orgs_page, methods=["GET"]),
    Route("/orgs", orgs.create_org, methods=["POST"]),
    Route("/orgs/{org}", org.org_page, methods=["GET"]),
    Route("/orgs/{org}/keys", org.create_key, methods=["POST"]),
    Route("/keys/{key}/revoke", org.revoke_key, methods=["POST"]),
    Route("/audit", audit.audit_page, methods=["GET"]),
    Route("/security", security.security_page, methods=["GET"]),
    Route("/system", system.system_page, methods=["GET"]),
    Route("/download", downloads.download, methods=["GET"]),
]


def _guarded(handler: Handler) -> Handler:
    """The dashboard's own answers to the API's errors (a page, not JSON) and to a bad CSRF."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except Forbidden:
            return await auth.forbidden(request)
        except ApiError as exc:
            return await auth.api_error(request, exc)

    return guarded


def mount() -> Mount:
    """Everything under /ui: the pages and the vendored static files, behind the strict headers."""
    guarded = [Route(r.path, _guarded(r.endpoint), methods=r.methods) for r in ROUTES]
    return Mount(
        "/ui",
        routes=[
            *by_path(guarded),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="ui-static"),
        ],
        middleware=[Middleware(SecurityHeaders)],
    )
