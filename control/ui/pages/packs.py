"""The credit packs page: every pack (on sale or not), a form that adds or replaces one
(credits typed as credits, the price in the currency's major units, "12.34" USD, read exactly
by money.parse_major), and deleting one after a confirmation page. Through the admin API's
pack handlers, so a read-only session reads and the API refuses its writes."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from control.http import ApiError
from control.payments import money, packs
from control.ui import formvalues, web
from control.ui.formvalues import FormError
from control.ui.sessions import Session
from control.ui.web import call, render, signed_in

PACKS = "/ui/packs"
FIELDS = ("id", "name", "credits", "amount", "currency")


def _typed_of(pack: dict[str, Any]) -> dict[str, Any]:
    """A pack as the form shows it, to be replaced: credits and price as they were typed."""
    whole, fraction = divmod(pack["credits"], formvalues.MICRO)
    decimals = f"{fraction:06d}".rstrip("0")
    return {
        "id": pack["id"],
        "name": pack["name"],
        "credits": f"{whole}.{decimals}" if decimals else str(whole),
        "amount": money.format_major(pack["amount"], pack["currency"]),
        "currency": pack["currency"],
        "active": pack["active"],
    }


async def _page(
    request: Request,
    session: Session,
    *,
    status_code: int = 200,
    error: str | None = None,
    typed: dict[str, Any] | None = None,
) -> Response:
    listed = (await call(request, session, packs.list_packs))["items"]
    editing = request.query_params.get("edit", "")
    chosen = next((pack for pack in listed if pack["id"] == editing), None)
    if typed is None:
        typed = _typed_of(chosen) if chosen else {"currency": "usd", "active": True}
    return render(
        request,
        "packs.html",
        session,
        status_code,
        packs=listed,
        currencies=sorted(money.CURRENCIES),
        typed=typed,
        error=error,
        saved=request.query_params.get("saved"),
        deleted=request.query_params.get("deleted"),
    )


@signed_in
async def packs_page(request: Request, session: Session) -> Response:
    return await _page(request, session)


@signed_in
async def put_pack(request: Request, session: Session) -> Response:
    form = await web.form_of(request, session)
    typed: dict[str, Any] = {name: form.get(name, "").strip() for name in FIELDS}
    typed["active"] = form.get("active") == "on"
    typed["currency"] = typed["currency"].lower()
    try:
        if not typed["id"]:
            raise FormError("Pack id is needed (e.g. starter-10).")
        credits = formvalues.credits(typed["credits"], "Credits")
        if credits <= 0:
            raise FormError("Credits must be more than zero.")
        try:
            amount = money.parse_major(typed["amount"], typed["currency"])
        except money.MoneyError as exc:
            raise FormError(f"Price: {exc}.") from None
        body: dict[str, Any] = {
            "credits": credits,
            "amount": amount,
            "currency": typed["currency"],
            "active": typed["active"],
        }
        if typed["name"]:
            body["name"] = typed["name"]
        where = {"pack": typed["id"]}
        await call(request, session, packs.put_pack, path_params=where, body=body, method="PUT")
    except (FormError, ApiError) as exc:
        status, message = formvalues.refusal(exc)
        return await _page(request, session, status_code=status, error=message, typed=typed)
    # Post/redirect/get: a reload shows the pack, it does not send the form again.
    return RedirectResponse(web.page_url(PACKS, saved=typed["id"]), status_code=303)


@signed_in
async def confirm_delete(request: Request, session: Session) -> Response:
    where = {"pack": request.path_params["pack"]}
    pack = await call(request, session, packs.get_pack, path_params=where)
    return render(request, "pack_delete.html", session, pack=pack)


@signed_in
async def delete_pack(request: Request, session: Session) -> Response:
    await web.form_of(request, session)
    where = {"pack": request.path_params["pack"]}
    await call(request, session, packs.delete_pack, path_params=where, method="DELETE")
    return RedirectResponse(web.page_url(PACKS, deleted=where["pack"]), status_code=303)
