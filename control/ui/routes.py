"""The dashboard's routes, listed in one place, mounted at /ui by control/app.py."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from control.http import ApiError, by_path
from control.ui import pages
from control.ui.web import HERE, Handler, SecurityHeaders

ROUTES = [
    Route("/", pages.overview, methods=["GET"]),
    Route("/overview.json", pages.overview_data, methods=["GET"]),
    Route("/login", pages.login_page, methods=["GET"]),
    Route("/login", pages.login, methods=["POST"]),
    Route("/logout", pages.logout, methods=["POST"]),
    Route("/orgs", pages.orgs_page, methods=["GET"]),
    Route("/orgs", pages.create_org, methods=["POST"]),
    Route("/orgs/{org}", pages.org_page, methods=["GET"]),
    Route("/orgs/{org}/keys", pages.create_key, methods=["POST"]),
    Route("/keys/{key}/revoke", pages.revoke_key, methods=["POST"]),
    Route("/audit", pages.audit_page, methods=["GET"]),
]


def _guarded(handler: Handler) -> Handler:
    """The dashboard's own answers to the API's errors (a page, not JSON) and to a bad CSRF."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except pages.Forbidden:
            return await pages.forbidden(request)
        except ApiError as exc:
            return await pages.api_error(request, exc)

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
