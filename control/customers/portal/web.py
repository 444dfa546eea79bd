"""What the portal's pages share: the dashboard's strict headers (control/ui/web.py), with the
identity provider's origin allowed as a form's target (signing out redirects there), and
Stripe's checkout (buying credits redirects there); templates;
the cookies (essential ones only); and who a session's person is a member of."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates
from starlette.types import Scope

from control.customers import accounts
from control.customers.portal import sessions
from control.customers.portal.oidc import RelyingParty
from control.customers.portal.sessions import PortalSession
from control.payments.stripeapi import StripeApi
from control.store import db as dbm
from control.store.state import ControlState
from control.ui.web import SECURITY_HEADERS, credits, page_url, utc, zone_label

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
# The dashboard's way of showing times and credits, and its links with a query.
templates.env.filters["utc"] = utc
templates.env.filters["credits"] = credits
templates.env.globals["zone_label"] = zone_label
templates.env.globals["page_url"] = page_url
HOME = "/portal/"
CALLBACK = "/portal/callback"


def relying_party(request: Request) -> RelyingParty | None:
    """The portal's OIDC client (launch/control.py sets it; None: the portal is not set up)."""
    return getattr(request.app.state, "portal", None)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def checkout_origins(scope: Scope) -> set[str]:
    """The origins a checkout's payment page may be on, once Stripe is set up."""
    payments: StripeApi | None = getattr(scope["app"].state, "stripe", None)
    return payments.checkout_origins() if payments is not None else set()


def portal_headers(scope: Scope) -> Mapping[str, str]:
    """The dashboard's headers; the CSP's form-action also allows the provider's origins, as the
    sign-out form is answered by a redirect to its end_session_endpoint, and Stripe's checkout,
    where a Buy form is answered by a redirect (a form's redirects are held to form-action)."""
    rp: RelyingParty | None = getattr(scope["app"].state, "portal", None)
    origins = checkout_origins(scope)
    if rp is not None:
        origins.add(_origin(rp.issuer))
        if rp.provider is not None and rp.provider.end_session_endpoint:
            origins.add(_origin(rp.provider.end_session_endpoint))
    if not origins:
        return SECURITY_HEADERS
    policy = SECURITY_HEADERS["Content-Security-Policy"]
    allowed = " ".join(["'self'", *sorted(origins)])
    return {
        **SECURITY_HEADERS,
        "Content-Security-Policy": policy.replace("form-action 'self'", f"form-action {allowed}"),
    }


# --- cookies: HttpOnly, SameSite=Lax (the callback is a cross-site top-level GET), Path=/portal;
# Secure over TLS, as /ui/ decides (plain http only on loopback in practice: a browser keeps no
# Secure cookie from http). `__Secure-` rather than `__Host-`, which would demand Path=/.


def _tls(request: Request) -> bool:
    return request.url.scheme == "https"


def session_cookie(request: Request) -> str:
    return "__Secure-nextapi_portal" if _tls(request) else "nextapi_portal"


def flow_cookie(request: Request) -> str:
    return "__Secure-nextapi_portal_flow" if _tls(request) else "nextapi_portal_flow"


def set_cookie(
    request: Request,
    response: Response,
    name: str,
    value: str,
    path: str,
    max_age: int | None = None,
) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=path, httponly=True, samesite="lax", secure=_tls(request)
    )


def delete_cookie(request: Request, response: Response, name: str, path: str) -> None:
    response.delete_cookie(name, path=path, httponly=True, samesite="lax", secure=_tls(request))


async def session_of(request: Request) -> PortalSession | None:
    state: ControlState = request.app.state.control
    return await sessions.find(state, request.cookies.get(session_cookie(request)))


def absolute(request: Request, path: str) -> str:
    """`path` on this server as the browser reached it (the provider sends it back here)."""
    return str(request.url.replace(path=path, query="", fragment=""))


@dataclass(frozen=True, slots=True)
class PortalMember:
    org_id: str
    org_name: str
    role: str  # admin or member
    clerk_org_id: str = ""  # the org's Clerk id (its external_id)
    orgs: tuple[tuple[str, str], ...] = ()  # every org of the person's: (Clerk id, name)


async def portal_orgs(state: ControlState, sub: str) -> list[tuple[str, str]]:
    """(Clerk id, name) of each open org the person is a member of, their newest first."""
    rows = await dbm.fetch_all(
        state.db,
        "SELECT o.external_id, o.name FROM customer_members m JOIN orgs o ON o.id=m.org_id "
        "WHERE m.clerk_user_id=? AND o.status!='closed' AND o.external_id IS NOT NULL "
        "ORDER BY m.created_at DESC",
        sub,
    )
    return [(row["external_id"], row["name"]) for row in rows]


async def portal_member(
    state: ControlState, sub: str, chosen: str | None = None
) -> PortalMember | None:
    """The org of the person the provider knows as `sub` (with Clerk as the provider, Clerk's
    user id), and their role: accounts' member_of, for the Clerk organization the session chose
    (the switcher), else their newest membership of an open org (an ID token names no active
    org, as a session token does). None: Clerk's webhooks have linked them to no org yet."""
    orgs = await portal_orgs(state, sub)
    names = dict(orgs)
    clerk_org = chosen if chosen in names else (orgs[0][0] if orgs else None)
    if clerk_org is None:
        return None
    membership = await accounts.member_of(state.db, sub, clerk_org)
    if membership is None:
        return None
    return PortalMember(
        membership.org_id, names[clerk_org], membership.role, clerk_org, tuple(orgs)
    )


def render(
    request: Request,
    name: str,
    session: PortalSession | None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    context = {"nav": name.removesuffix(".html"), "member": None} | context | {"session": session}
    return templates.TemplateResponse(request, name, context, status_code=status_code)
