"""Admin access for handlers: the token must be valid and carry the scope for the call."""

from __future__ import annotations

from starlette.requests import Request

from control.api.throttle import FailureThrottle
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


# Wrong admin tokens per client address a minute before it gets 429 without a verification:
# the default of the setting admin_auth_failures_per_minute (tests/unit/test_options.py).
ADMIN_FAILURES_PER_MINUTE = 30


async def _authenticate(request: Request) -> Admin:
    if (admin := request.scope.get(SESSION_ADMIN)) is not None:
        return admin
    authorization = request.headers.get("authorization")
    throttle: FailureThrottle = request.app.state.admin_throttle
    address = request.client.host if request.client else "unknown"

    def gate() -> None:
        # Asked before any verification (a token already verified never gets here): an
        # address past its budget of wrong tokens waits, whoever's token it sends.
        if throttle.blocked(address):
            raise ApiError(
                429,
                "TooManyRequests",
                "Too many failed admin authentications from this address: try again later.",
                headers={"Retry-After": "60"},
            )

    try:
        return await request.app.state.control.admin.authenticate(authorization, gate)
    except ApiError as exc:
        if exc.status == 401 and authorization:
            throttle.failed(address)
        raise
