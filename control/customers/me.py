"""The customer API's routes (`/v1/me…`), scoped to the session's org.

A route is the admin API's handler for the customer's org, called in-process
(control/api/inprocess.py) by `through`: validation, audit and answers are the admin API's,
with the customer as the actor (`clerk:<user id>`, scope `read` for members). The path's ids
are checked against the org first, so another org's key or webhook answers 404, like one that
does not exist. What only NextAPI decides stays out of reach (control/customers/keys.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from control.api import inprocess
from control.api.inprocess import Handler
from control.api.orgs import load_org
from control.customers import accounts
from control.customers.access import Customer, customer_for
from control.customers.analytics import ProductAnalytics
from control.http import bad_request, json_body, not_found, rfc3339
from control.store import db as dbm
from control.store.adminauth import Admin
from control.store.state import ControlState

# What the admin handler's path parameters are, for a customer's request: the org's own.
Scope = Callable[[Request, Customer], Awaitable[dict[str, str]]]
# Looks at a write's body before the admin handler does (what a customer may not set).
BodyCheck = Callable[[Request, Customer, dict[str, Any]], Awaitable[None]]


def acting(customer: Customer) -> Admin:
    """The admin the customer's calls run as: the audit log names the Clerk user."""
    scopes = ("admin",) if customer.is_admin else ("read",)
    return Admin(token_id=f"clerk:{customer.clerk_user_id}", scopes=scopes)


async def org_scope(request: Request, customer: Customer) -> dict[str, str]:
    return {"org": customer.org_id}


async def key_scope(request: Request, customer: Customer) -> dict[str, str]:
    """The path's key, if it is the org's; else 404, as if it did not exist."""
    key_id = request.path_params["key"]
    state: ControlState = request.app.state.control
    row = await dbm.fetch_one(state.db, "SELECT org_id FROM api_keys WHERE id=?", key_id)
    if row is None or row["org_id"] != customer.org_id:
        raise not_found("Key")
    return {"key": key_id}


async def webhook_scope(request: Request, customer: Customer) -> dict[str, str]:
    """The org's own, with the path's webhook (and event): the admin handlers look them up
    within the org, so another org's answer 404."""
    names = [name for name in ("webhook", "event") if name in request.path_params]
    return {"org": customer.org_id} | {name: request.path_params[name] for name in names}


def through(
    handler: Handler,
    *,
    write: bool = False,
    scope: Scope = org_scope,
    check: BodyCheck | None = None,
    query: bool = True,
) -> Callable[[Request], Awaitable[Response]]:
    """A customer route: the session's member (an admin, for a `write`) calls `handler` on
    their org, with the request's JSON body and (unless not `query`) its query."""

    async def endpoint(request: Request) -> Response:
        customer = await customer_for(request, write=write)
        path_params = await scope(request, customer)
        body = await json_body(request) if await request.body() else None
        if check is not None:
            await check(request, customer, body or {})
        if body is None and request.method in ("POST", "PATCH"):
            body = {}
        response = await inprocess.invoke(
            request,
            acting(customer),
            handler,
            path_params=path_params,
            # The query exactly as sent: the admin handler refuses what it would refuse.
            query_string=request.scope["query_string"] if query else b"",
            body=body,
            method=request.method,
        )
        analytics: ProductAnalytics | None = request.app.state.analytics
        if write and analytics is not None and response.status_code < 400:
            await analytics.capture(customer, handler.__name__, response.status_code)
        return response

    endpoint.__doc__ = handler.__doc__
    endpoint.__name__ = f"me_{handler.__name__}"
    return endpoint


async def me(request: Request) -> JSONResponse:
    """Who is signed in, in which org, with which role."""
    customer = await customer_for(request)
    state: ControlState = request.app.state.control
    person = await accounts.user(state.db, customer.clerk_user_id)
    org = await load_org(state, customer.org_id)
    return JSONResponse(
        {
            "user": {
                "id": customer.clerk_user_id,
                "name": _full_name(person),
                "email": person["email"] if person is not None else None,
            },
            "org": {
                "id": org["id"],
                "name": org["name"],
                "external_id": org["external_id"],
                "status": org["status"],
                "created_at": rfc3339(org["created_at"]),
            },
            "role": customer.role,
        }
    )


async def confirm_close(request: Request, customer: Customer, body: dict[str, Any]) -> None:
    """Closing is for good: the body must name the org (`{"confirm": "<org id>"}`)."""
    if body.get("confirm") != customer.org_id:
        raise bad_request(
            f'Closing the account stops every key at once: send {{"confirm": "{customer.org_id}"}}.'
        )


def _full_name(person: Any) -> str | None:
    if person is None:
        return None
    parts = [person["first_name"], person["last_name"]]
    return " ".join(part for part in parts if part) or None
