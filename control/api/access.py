"""Admin access for handlers: the token must be valid and carry the scope for the call."""

from __future__ import annotations

from starlette.requests import Request

from control.http import ApiError
from control.store.adminauth import Admin


async def admin_for(request: Request) -> Admin:
    admin = await _authenticate(request)
    if not admin.allows(request.method):
        raise ApiError(403, "Forbidden", "The admin token lacks the scope for this call.")
    return admin


async def edge_for(request: Request) -> Admin:
    """The edge API hands out key hashes and takes usage: `admin` or `edge` scope only."""
    admin = await _authenticate(request)
    if not admin.is_edge:
        raise ApiError(403, "Forbidden", "The token lacks the `edge` scope.")
    return admin


# The dashboard calls the API's handlers for a signed-in session: it puts the session's admin
# here (an ASGI scope key no client can set) instead of a token it never keeps.
SESSION_ADMIN = "nextapi.session_admin"


async def _authenticate(request: Request) -> Admin:
    if (admin := request.scope.get(SESSION_ADMIN)) is not None:
        return admin
    authorization = request.headers.get("authorization")
    return await request.app.state.control.admin.authenticate(authorization)
