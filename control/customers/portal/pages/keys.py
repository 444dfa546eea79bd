"""The portal's keys page: the org's keys for every member; for its admins, create a key (its
secret shown once, with a copy button), rotate one (the new secret shown once), revoke one
(after a confirmation page) and edit a key's IP allowlist. Every read and write is the
customer API's (control/customers/routes.py): a member's write would be refused there too."""

from __future__ import annotations

from typing import Any

from starlette.responses import RedirectResponse, Response

from control.customers import routes as me
from control.customers.portal.calls import Visit, customer_page
from control.http import ApiError

KEYS = "/portal/keys"
# A rotation's choices of how long the old secret keeps working (the API allows up to 7 days).
GRACE_CHOICES = (
    (0, "old secret stops now"),
    (3600, "old secret works 1 more hour"),
    (86400, "old secret works 1 more day"),
    (604800, "old secret works 7 more days"),
)


def lines(text: str) -> list[str]:
    """A textarea's entries, one a line (blank lines and spaces dropped)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


async def _listing(visit: Visit, **context: Any) -> Response:
    cursor, listed = await visit.paged(me.list_keys)
    status = 400 if context.get("error") else 200
    return visit.render(
        "keys.html", status, keys=listed, cursor=cursor, grace_choices=GRACE_CHOICES, **context
    )


@customer_page
async def keys_page(visit: Visit) -> Response:
    return await _listing(visit, saved=visit.request.query_params.get("saved"))


@customer_page
async def create_key(visit: Visit) -> Response:
    form = await visit.form()
    body: dict[str, Any] = {"name": form.get("name", "").strip()}
    if form.get("environment") in ("live", "test"):
        body["environment"] = form["environment"]
    if ips := lines(form.get("allowed_ips", "")):
        body["allowed_ips"] = ips
    try:
        created = await visit.call(me.create_key, body=body)
    except ApiError as refused:
        if refused.status != 400:
            raise
        return await _listing(visit, error=refused.message, fields=form)
    return visit.render("key_secret.html", shown_key=created, secret_title="New key")


@customer_page
async def rotate_key(visit: Visit) -> Response:
    form = await visit.form()
    key_id = visit.request.path_params["key"]
    grace = form.get("grace_seconds", "0")
    # How long the old secret goes on working: a choice of the form's, else none.
    body = {"grace_seconds": int(grace) if grace.isdigit() else grace}
    rotated = await visit.call(me.rotate_key, path_params={"key": key_id}, body=body)
    return visit.render("key_secret.html", shown_key=rotated, secret_title="Rotated key")


@customer_page
async def confirm_revoke(visit: Visit) -> Response:
    key_id = visit.request.path_params["key"]
    key = await visit.call(me.get_key, path_params={"key": key_id})
    if not visit.is_admin:  # the page offers nothing a member could do
        raise ApiError(403, "Forbidden", "Only the organization's admins can change this.")
    return visit.render("key_revoke.html", key=key)


@customer_page
async def revoke_key(visit: Visit) -> Response:
    await visit.form()
    key_id = visit.request.path_params["key"]
    await visit.call(me.revoke_key, path_params={"key": key_id}, method="DELETE")
    return RedirectResponse(f"{KEYS}?saved=revoked", status_code=303)


@customer_page
async def edit_allowlist(visit: Visit) -> Response:
    form = await visit.form()
    key_id = visit.request.path_params["key"]
    body = {"allowed_ips": lines(form.get("allowed_ips", ""))}
    try:
        await visit.call(me.patch_key, path_params={"key": key_id}, body=body, method="PATCH")
    except ApiError as refused:
        if refused.status != 400:
            raise
        return await _listing(visit, error=refused.message, error_key=key_id)
    return RedirectResponse(f"{KEYS}?saved=allowlist", status_code=303)
