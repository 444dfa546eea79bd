"""Admin access for handlers: the token must be valid and carry the scope for the method."""

from __future__ import annotations

from starlette.requests import Request

from control.adminauth import Admin
from control.http import ApiError


async def admin_for(request: Request) -> Admin:
    admin = await request.app.state.control.admin.authenticate(request.headers.get("authorization"))
    if not admin.allows(request.method):
        raise ApiError(403, "Forbidden", "The admin token lacks the scope for this call.")
    return admin
