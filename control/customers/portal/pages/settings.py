"""The portal's settings page: the org's video retention (its admins choose it within the
bounds NextAPI set for the org, which the page shows), each person's own analytics opt-out,
the org's export (a ZIP, admins) and closing the account (admins, who type the org id to
confirm). Through the customer API's settings, export and close routes."""

from __future__ import annotations

from typing import Any

from starlette.responses import RedirectResponse, Response

from control.customers import routes as me
from control.customers.portal.calls import Visit, customer_page
from control.http import ApiError

SETTINGS = "/portal/settings"


async def _page(visit: Visit, status_code: int = 200, **context: Any) -> Response:
    current = await visit.call(me.get_settings)
    saved = visit.request.query_params.get("saved")
    return visit.render("settings.html", status_code, settings=current, saved=saved, **context)


@customer_page
async def settings_page(visit: Visit) -> Response:
    return await _page(visit)


async def _patch(visit: Visit, body: dict[str, Any], field: str) -> Response:
    try:
        await visit.call(me.patch_settings, body=body, method="PATCH")
    except ApiError as refused:
        if refused.status != 400:
            raise
        return await _page(visit, 400, error=refused.message, error_field=field)
    return RedirectResponse(f"{SETTINGS}?saved={field}", status_code=303)


@customer_page
async def set_retention(visit: Visit) -> Response:
    form = await visit.form()
    typed = form.get("video_retention_days", "").strip()
    # A whole number goes to the API as one; anything else as typed, which the API refuses.
    days: int | str = int(typed) if typed.isdigit() else typed
    return await _patch(visit, {"video_retention_days": days}, "retention")


@customer_page
async def set_analytics(visit: Visit) -> Response:
    form = await visit.form()
    return await _patch(visit, {"analytics_opt_out": form.get("opt_out") == "on"}, "analytics")


@customer_page
async def close_account(visit: Visit) -> Response:
    form = await visit.form()
    typed = form.get("confirm", "").strip()
    if typed != visit.customer.org_id:
        return await _page(
            visit,
            400,
            error=f"Type the organization's id, {visit.customer.org_id}, to close the account.",
            error_field="close",
        )
    await visit.call(me.close_org, body={"confirm": typed})
    return visit.render("closed.html", org_id=visit.customer.org_id)
