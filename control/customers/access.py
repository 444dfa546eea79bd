"""Who calls the customer API: a Clerk session (control/customers/tokens.py) of a member of an
org the webhooks provisioned (control/customers/accounts.py). Members read; admins also write.
Each refusal is a 401 or 403 that says what to do."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from control.customers import accounts
from control.customers.accounts import Role
from control.customers.tokens import SIGN_IN, ClerkTokens, TokenRefused, session_token
from control.http import ApiError
from control.store.state import ControlState

# Where a portal page (control/customers/portal/) puts its signed-in customer when it calls a
# customer route in-process: an ASGI scope key, which no client's request can set.
SESSION_CUSTOMER = "nextapi.session_customer"


@dataclass(frozen=True)
class Customer:
    clerk_user_id: str
    clerk_org_id: str
    org_id: str  # the NextAPI org every /v1/me route is scoped to
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


async def customer_for(request: Request, *, write: bool = False) -> Customer:
    """The signed-in member the request speaks for; with `write`, an admin of the org. The
    portal's session customer first (its page found the membership), else the Clerk token's."""
    found = request.scope.get(SESSION_CUSTOMER)
    if isinstance(found, Customer):
        return _may(found, write=write)
    token = session_token(request.headers, request.cookies)
    if token is None:  # before all else: an anonymous call is a 401 however things stand
        raise ApiError(401, "Unauthorized", SIGN_IN)
    tokens: ClerkTokens | None = request.app.state.clerk_tokens
    if tokens is None:
        raise ApiError(
            503,
            "NotConfigured",
            "The customer API is not configured: set clerk_jwks_url (or clerk_jwt_key) and "
            "clerk_authorized_parties.",
        )
    try:
        session = await tokens.verify(token)
    except TokenRefused as refused:
        code = "Unauthorized" if refused.status == 401 else "Forbidden"
        raise ApiError(refused.status, code, refused.message) from None
    if session.org_id is None:
        raise ApiError(
            403, "Forbidden", "Choose an organization in your app: the session has none active."
        )
    state: ControlState = request.app.state.control
    membership = await accounts.member_of(state.db, session.user_id, session.org_id)
    if membership is None:
        raise ApiError(403, "Forbidden", await _why_not(state, session.org_id))
    # The lesser of the two roles: the token is the freshest word, the webhooks the
    # authoritative one, and a change may have reached only one of them yet.
    role: Role = "admin" if membership.role == "admin" and session.org_role == "admin" else "member"
    return _may(Customer(session.user_id, session.org_id, membership.org_id, role), write=write)


def _may(found: Customer, *, write: bool) -> Customer:
    if write and not found.is_admin:
        raise ApiError(403, "Forbidden", "Only the organization's admins can change this.")
    return found


async def _why_not(state: ControlState, clerk_org_id: str) -> str:
    org = await accounts.org_by_external_id(state.db, clerk_org_id)
    if org is None:
        return (
            "This organization is not provisioned yet: Clerk's webhooks have not reached "
            "NextAPI. Try again in a minute."
        )
    if org["status"] == "closed":
        return "This organization's account is closed."
    return "You are not a member of this organization here yet: try again in a minute."
