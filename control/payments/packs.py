"""Credit packs: what customers can buy, as data an admin prices (`PUT /v1/credit-packs/{pack}`):
so many micro-credits for so much money. Every change is audited; a payment copies its pack's
figures when it is made, so a pack changed or deleted later changes no sale."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from control.api import schemas, validate
from control.api.access import admin_for
from control.http import ApiError, bad_request, not_found, rfc3339
from control.payments import money
from control.store import db as dbm
from control.store.state import ControlState
from control.store.wallet import MAX_BALANCE

PACK_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def pack_id(request: Request, *, naming: bool = False) -> str:
    """The path's pack id; one that no pack could have is 404, or 400 when `naming` a new one."""
    value = request.path_params["pack"]
    if not PACK_ID.fullmatch(value):
        if not naming:
            raise not_found("Credit pack")
        raise bad_request(
            "A pack id is 1 to 64 of a-z, 0-9, `_` and `-`, starting with a letter or digit."
        )
    return value


def pack_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "credits": row["credits"],
        "amount": row["amount"],
        "currency": row["currency"],
        "amount_display": money.label(row["amount"], row["currency"]),
        "active": bool(row["active"]),
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
    }


async def find(db: Any, pack: str, *, active: bool = False) -> Any:
    """The pack, or None; with `active`, only one customers may buy."""
    row = await dbm.fetch_one(db, "SELECT * FROM credit_packs WHERE id=?", pack)
    return None if row is None or (active and not row["active"]) else row


async def put_pack(request: Request) -> JSONResponse:
    """Create or replace a pack (201 when new): `credits` for `amount` minor units of
    `currency`; `active: false` keeps it from being bought."""
    state: ControlState = request.app.state.control
    admin = await admin_for(request)
    pack = pack_id(request, naming=True)
    body = await schemas.body_of(request, schemas.CreditPackPut)
    credits = validate.int_range(body["credits"], "credits", 1, MAX_BALANCE)
    currency = validate.text(body, "currency", maximum=3).lower()
    try:
        amount = money.amount(body["amount"], currency)
    except money.MoneyError as exc:
        raise ApiError(400, "InvalidParameter", f"`amount`/`currency`: {exc}.") from None
    name = validate.text(body, "name") if "name" in body else money.credits_label(credits)
    active = validate.flag(body, "active", True)
    now = dbm.now()
    async with state.transaction() as tx:
        before = await find(tx, pack)
        await tx.execute(
            "INSERT INTO credit_packs (id, name, credits, amount, currency, active, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "name=excluded.name, credits=excluded.credits, amount=excluded.amount, "
            "currency=excluded.currency, active=excluded.active, updated_at=excluded.updated_at",
            (pack, name, credits, amount, currency, active, now, now),
        )
        detail = {"credits": credits, "amount": amount, "currency": currency}
        action = "pack.create" if before is None else "pack.update"
        await state.audit(tx, admin.token_id, action, pack, detail | {"active": active})
        row = await find(tx, pack)
    return JSONResponse(pack_json(row), status_code=201 if before is None else 200)


async def list_packs(request: Request) -> JSONResponse:
    """Every pack, active or not, cheapest first."""
    state: ControlState = request.app.state.control
    await admin_for(request)
    rows = await dbm.fetch_all(state.db, "SELECT * FROM credit_packs ORDER BY currency, amount, id")
    return JSONResponse({"items": [pack_json(row) for row in rows]})


async def get_pack(request: Request) -> JSONResponse:
    state: ControlState = request.app.state.control
    await admin_for(request)
    row = await find(state.db, pack_id(request))
    if row is None:
        raise not_found("Credit pack")
    return JSONResponse(pack_json(row))


async def delete_pack(request: Request) -> JSONResponse:
    """Delete a pack: it can no longer be bought, and orgs that recharged with it stop doing
    so (audited); payments already made keep its figures."""
    state: ControlState = request.app.state.control
    admin = await admin_for(request)
    pack = pack_id(request)
    async with state.transaction() as tx:
        if await find(tx, pack) is None:
            raise not_found("Credit pack")
        await tx.execute("DELETE FROM credit_packs WHERE id=?", (pack,))
        cursor = await tx.execute(
            "UPDATE billing_accounts SET recharge_pack=NULL, auto_recharge=0, updated_at=? "
            "WHERE recharge_pack=?",
            (dbm.now(), pack),
        )
        detail = {"orgs_recharging_with_it": cursor.rowcount}
        await state.audit(tx, admin.token_id, "pack.delete", pack, detail)
    return JSONResponse({"id": pack, "deleted": True})


async def buyable(request: Request) -> JSONResponse:
    """The packs on sale (the customer API's `GET /v1/me/credit-packs`)."""
    state: ControlState = request.app.state.control
    rows = await dbm.fetch_all(
        state.db, "SELECT * FROM credit_packs WHERE active=1 ORDER BY currency, amount, id"
    )
    return JSONResponse({"items": [pack_json(row) for row in rows]})
