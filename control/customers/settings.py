"""A customer's settings (`GET/PATCH /v1/me/settings`): how long the gateway keeps the org's
videos, which its admins choose within the bounds NextAPI's admins set for the org, and each
person's own opt-out of product analytics (any member's, for themselves)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from control.api import inprocess, orgs
from control.customers import accounts
from control.customers.access import Customer, customer_for
from control.customers.analytics import ProductAnalytics
from control.customers.me import acting
from control.http import ApiError, bad_request, json_body
from control.store import db as dbm
from control.store.state import ControlState

FIELDS = ("video_retention_days", "analytics_opt_out")


async def get_settings(request: Request) -> JSONResponse:
    customer = await customer_for(request)
    return JSONResponse(await _settings(request.app.state.control, customer))


async def patch_settings(request: Request) -> JSONResponse:
    customer = await customer_for(request)
    body = await json_body(request)
    unknown = sorted(set(body) - set(FIELDS))
    if unknown or not body:
        raise bad_request(f"Settings take {' and '.join(FIELDS)}.")
    state: ControlState = request.app.state.control
    if "analytics_opt_out" in body and not isinstance(body["analytics_opt_out"], bool):
        raise bad_request("`analytics_opt_out` must be true or false.")
    if "video_retention_days" in body:
        await _set_retention(request, state, customer, body["video_retention_days"])
    if "analytics_opt_out" in body:
        opted_out = body["analytics_opt_out"]
        async with state.transaction() as tx:
            await tx.execute(
                "UPDATE customer_users SET analytics_opt_out=?, updated_at=? WHERE clerk_user_id=?",
                (int(opted_out), dbm.now(), customer.clerk_user_id),
            )
            await state.audit(
                tx,
                acting(customer).token_id,
                "customer.analytics",
                customer.clerk_user_id,
                {"opt_out": opted_out},
            )
    analytics: ProductAnalytics | None = request.app.state.analytics
    if analytics is not None:  # after the change: an opt-out just made is already heeded
        await analytics.capture(customer, "patch_settings", 200)
    return JSONResponse(await _settings(state, customer))


async def _set_retention(
    request: Request, state: ControlState, customer: Customer, days: Any
) -> None:
    if not customer.is_admin:
        raise ApiError(403, "Forbidden", "Only the organization's admins can change this.")
    org = await orgs.load_org(state, customer.org_id)
    low, high = org["video_retention_min_days"], org["video_retention_max_days"]
    if not (isinstance(days, int) and not isinstance(days, bool) and low <= days <= high):
        raise bad_request(
            f"`video_retention_days` must be a whole number of days from {low} to {high}."
        )
    await inprocess.call(
        request,
        acting(customer),
        orgs.patch_org,
        path_params={"org": customer.org_id},
        body={"video_retention_days": days},
        method="PATCH",
    )


async def _settings(state: ControlState, customer: Customer) -> dict[str, Any]:
    org = await orgs.load_org(state, customer.org_id)
    person = await accounts.user(state.db, customer.clerk_user_id)
    return {
        "video_retention_days": org["video_retention_days"],
        "video_retention_min_days": org["video_retention_min_days"],
        "video_retention_max_days": org["video_retention_max_days"],
        "analytics_opt_out": bool(person["analytics_opt_out"]) if person is not None else False,
    }
