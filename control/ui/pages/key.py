"""One key (a page under the org's keys tab): its limits and allowlists, edited through
`PATCH /v1/keys/{key}`, and rotation with a grace period through `POST …/rotate` (the new secret
shown once, as at creation)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from control.api import keys
from control.http import ApiError
from control.ui import formvalues, web
from control.ui.formvalues import FormError
from control.ui.pages.org import org_header
from control.ui.sessions import Session
from control.ui.web import call, render, signed_in

# The form's rate-limit fields: the API's names, with the labels the page shows.
RATE_FIELDS = {
    "requests_per_minute": "Requests per minute",
    "requests_per_day": "Requests per day",
    "concurrent_tasks": "Concurrent tasks",
}
GRACE_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


def fields_of(key: Mapping[str, Any]) -> dict[str, str]:
    """The key's current settings as the edit form shows them (text, blank for none)."""
    spend = key["spend_limit"] or {}
    shown = {field: str(key["rate_limit"].get(field) or "") for field in RATE_FIELDS}
    return shown | {
        "name": key["name"],
        "status": key["status"],
        "spend_amount": web.credits(spend["amount"]) if spend else "",
        "spend_period": spend.get("period", "month"),
        "allowed_ips": "\n".join(key["allowed_ips"]),
        "models": "\n".join(key["models"] or []),
        "expires_at": key["expires_at"] or "",
    }


def patch_of(form: Mapping[str, str]) -> dict[str, Any]:
    """The PATCH body the posted form stands for: every setting, as typed (blank = none)."""
    rate_limit = {}
    for field, label in RATE_FIELDS.items():
        limit = formvalues.whole_number(form.get(field, ""), label)
        if limit is not None:
            rate_limit[field] = limit
    spend_amount = form.get("spend_amount", "").strip()
    spend_limit = None
    if spend_amount:
        amount = formvalues.credits(spend_amount, "Spend limit")
        spend_limit = {"amount": amount, "period": form.get("spend_period", "month")}
    models = formvalues.listed(form.get("models", ""))
    body: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "rate_limit": rate_limit,
        "spend_limit": spend_limit,
        "allowed_ips": formvalues.listed(form.get("allowed_ips", "")),
        "models": models or None,
        "expires_at": form.get("expires_at", "").strip() or None,
    }
    if form.get("status") in ("active", "suspended"):
        body["status"] = form["status"]
    return body


async def _key_page(
    request: Request,
    session: Session,
    key: dict[str, Any],
    *,
    status_code: int = 200,
    fields: dict[str, str] | None = None,
    error: str | None = None,
    rotate_error: str | None = None,
    rotated: dict[str, Any] | None = None,
    saved: bool = False,
) -> Response:
    header = await org_header(request, session, key["org_id"])
    return render(
        request,
        "org_key.html",
        session,
        status_code,
        **header,
        tab="keys",
        key=key,
        fields=fields or fields_of(key),
        rate_fields=RATE_FIELDS,
        grace_units=GRACE_UNITS,
        error=error,
        rotate_error=rotate_error,
        rotated=rotated,
        saved=saved,
    )


async def _load(request: Request, session: Session) -> dict[str, Any]:
    return await call(request, session, keys.get_key, path_params=dict(request.path_params))


@signed_in
async def key_page(request: Request, session: Session) -> Response:
    key = await _load(request, session)
    return await _key_page(request, session, key, saved=request.query_params.get("saved") == "1")


@signed_in
async def update_key(request: Request, session: Session) -> Response:
    form = await web.form_of(request, session)
    key = await _load(request, session)
    typed = {name: str(value) for name, value in form.items() if name != "csrf_token"}
    try:
        body = patch_of(form)
        await call(
            request,
            session,
            keys.patch_key,
            path_params={"key": key["id"]},
            body=body,
            method="PATCH",
        )
    except (FormError, ApiError) as exc:
        # Shown on the page beside what was typed, so that nothing typed is lost.
        status, message = formvalues.refusal(exc)
        return await _key_page(
            request,
            session,
            key,
            status_code=status,
            fields=fields_of(key) | typed,
            error=message,
        )
    return RedirectResponse(f"/ui/keys/{key['id']}?saved=1", status_code=303)


@signed_in
async def rotate_key(request: Request, session: Session) -> Response:
    form = await web.form_of(request, session)
    key = await _load(request, session)
    try:
        amount = formvalues.whole_number(form.get("grace", ""), "Grace period") or 0
        unit = GRACE_UNITS.get(form.get("grace_unit", "seconds"))
        if unit is None:
            raise FormError("Choose the grace period's unit.")
        rotated = await call(
            request,
            session,
            keys.rotate_key,
            path_params={"key": key["id"]},
            body={"grace_seconds": amount * unit},
        )
    except (FormError, ApiError) as exc:
        status, message = formvalues.refusal(exc)
        return await _key_page(request, session, key, status_code=status, rotate_error=message)
    # The new secret is in this one response (no-store) and nowhere else.
    shown = {name: value for name, value in rotated.items() if name != "key"}
    return await _key_page(request, session, shown, rotated=rotated)
