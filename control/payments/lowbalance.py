"""The low-balance alert and auto-recharge: an org sets a threshold (micro-credits) and, to
recharge, a pack and `auto_recharge`. When a settlement takes its available balance under the
threshold it gets one signed `balance.low` event, and with auto-recharge one payment of the pack
on the saved card (control/payments/recharger.py), however many settlements cross at once: the
crossing is one conditional update (`low` 0 to 1) in the settlement's own transaction. The
alert re-arms once the balance is seen at or over the threshold again (a grant, a settlement);
a failed recharge is an event too and is not retried before the next crossing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from control.api import schemas, validate
from control.api.access import admin_for
from control.api.orgs import load_org
from control.http import bad_request, rfc3339
from control.payments import disputes, packs, purchases
from control.store import db as dbm
from control.store.outbox import Outbox
from control.store.state import ControlState
from control.store.wallet import MAX_BALANCE, funds


class LowBalance:
    """The wallet's balance watch (control/store/wallet.py calls `check` in each settlement's
    transaction, and `wake` after it commits)."""

    def __init__(self, outbox: Outbox, wake_recharger: Callable[[], None]) -> None:
        self.outbox = outbox
        self.wake_recharger = wake_recharger

    async def check(self, tx: Any, org_id: str, now: float, *, settling: bool = True) -> bool:
        """True when it enqueued something (an event, a recharge) to wake for once committed.
        Only a settlement crosses (`settling`); anything else that moves the balance (a grant,
        a refund taking credits back) only re-arms the alert when the balance is over it: a
        refund must not set off a charge of the card it refunded."""
        account = await dbm.fetch_one(
            tx,
            "SELECT threshold, recharge_pack, auto_recharge, low FROM billing_accounts "
            "WHERE org_id=?",
            org_id,
        )
        if account is None or account["threshold"] is None:
            return False
        total, held = await funds(tx, org_id)
        available = total - held
        if available >= account["threshold"]:
            if account["low"]:
                await tx.execute("UPDATE billing_accounts SET low=0 WHERE org_id=?", (org_id,))
            return False
        if not settling:
            return False
        crossed = await tx.execute(
            "UPDATE billing_accounts SET low=1, updated_at=? WHERE org_id=? AND low=0",
            (now, org_id),
        )
        if crossed.rowcount == 0:
            return False  # under it since an earlier settlement: alerted then
        recharge = None
        if account["auto_recharge"] and account["recharge_pack"]:
            pack = await packs.find(tx, account["recharge_pack"], active=True)
            if pack is not None:
                recharge = purchases.new_recharge_id()
                await purchases.record(tx, recharge, org_id, pack, "recharge", "pending", now)
        payload = {
            "org_id": org_id,
            "available": available,
            "threshold": account["threshold"],
            "recharge": recharge,
            "created_at": rfc3339(now),
        }
        await self.outbox.org_event(tx, org_id, "balance.low", payload)
        return True

    def wake(self) -> None:
        self.outbox.wake()
        self.wake_recharger()


async def settings_json(db: Any, org_id: str) -> dict[str, Any]:
    account = await dbm.fetch_one(db, "SELECT * FROM billing_accounts WHERE org_id=?", org_id)
    return {
        "threshold": account["threshold"] if account else None,
        "pack": account["recharge_pack"] if account else None,
        "auto_recharge": bool(account and account["auto_recharge"]),
        "card_saved": bool(
            account and (account["payment_method"] or account["card_payment_intent"])
        ),
        "low": bool(account and account["low"]),
        "open_disputes": await disputes.open_for(db, org_id),
    }


async def get_low_balance(request: Request) -> JSONResponse:
    """The org's low-balance threshold and auto-recharge, and whether a card is saved."""
    state: ControlState = request.app.state.control
    await admin_for(request)
    org_id = request.path_params["org"]
    await load_org(state, org_id)
    return JSONResponse(await settings_json(state.db, org_id))


async def put_low_balance(request: Request) -> JSONResponse:
    """Set the threshold (null: no alert), the pack to recharge with and `auto_recharge`
    (which needs a pack, and a card saved by a checkout to charge)."""
    state: ControlState = request.app.state.control
    admin = await admin_for(request)
    org_id = request.path_params["org"]
    body = await schemas.body_of(request, schemas.LowBalancePut)
    threshold = body["threshold"]
    if threshold is not None:
        threshold = validate.int_range(threshold, "threshold", 0, MAX_BALANCE)
    pack = validate.text(body, "pack", maximum=64) if body.get("pack") is not None else None
    auto = validate.flag(body, "auto_recharge")
    await load_org(state, org_id)
    if pack is not None and await packs.find(state.db, pack, active=True) is None:
        raise bad_request("`pack` is not a credit pack on sale.")
    if auto and (pack is None or threshold is None):
        raise bad_request("`auto_recharge` needs a `threshold` and a `pack` to recharge with.")
    now = dbm.now()
    async with state.transaction() as tx:
        await tx.execute(
            "INSERT INTO billing_accounts (org_id, threshold, recharge_pack, auto_recharge, low, "
            "updated_at) VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (org_id) DO UPDATE SET "
            "threshold=excluded.threshold, recharge_pack=excluded.recharge_pack, "
            "auto_recharge=excluded.auto_recharge, low=0, updated_at=excluded.updated_at",
            (org_id, threshold, pack, auto, now),
        )
        detail = {"threshold": threshold, "pack": pack, "auto_recharge": auto}
        await state.audit(tx, admin.token_id, "org.low_balance", org_id, detail)
    return JSONResponse(await settings_json(state.db, org_id))
