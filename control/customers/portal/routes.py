"""The portal's routes, listed in one place, mounted at /portal by control/app.py."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.routing import Mount, Route

from control.customers.portal.pages import signin as pages
from control.customers.portal.web import portal_headers
from control.http import by_path
from control.ui.web import SecurityHeaders

ROUTES = [
    Route("/", pages.home, methods=["GET"]),
    Route("/login", pages.login, methods=["GET"]),
    Route("/callback", pages.callback, methods=["GET"]),
    Route("/logout", pages.logout, methods=["POST"]),
]


def mount() -> Mount:
    """Everything under /portal, behind the dashboard's strict headers (see portal_headers)."""
    return Mount(
        "/portal",
        routes=by_path(ROUTES),
        middleware=[Middleware(SecurityHeaders, headers_for=portal_headers)],
    )
