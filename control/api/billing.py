"""Credits over the admin API: grants, balance, the ledger, the org's tasks with their cost."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from control.api import csvout, schemas, validate
from control.api.access import admin_for
from control.api.orgs import load_org
from control.api.rows import columns_json, newest
from control.http import (
    ApiError,
    bad_request,
    conflict,
    page_limit,
    rfc3339,
)
from control.store import db as dbm
from control.store.state import ControlState
from control.store.wallet import MAX_BALANCE, BalanceCeiling, DatabaseWallet

MAX_GRANT = 2**53  # micro-credits, as for limits: exact in JSON and msgpack


def wallet_of(request: Request) -> DatabaseWallet:
    return request.app.state.wallet


async def grant_credits(request: Request) -> JSONResponse:
    """Grant credits to an org, or with `task_id` refund (all or `amount` of) a task's charge:
    a ledger entry either way (negative amounts are refused: no debits here)."""
    state: ControlState = request.app.state.control
    admin = await admin_for(request)
    org_id = request.path_params["org"]
    body = await schemas.body_of(request, schemas.CreditGrant)
    if "task_id" in body:
        return await _refund(request, state, admin.token_id, org_id, body)
    if "amount" not in body:
        raise ApiError(400, "MissingParameter", "`amount` is required (micro-credits).")
    amount = validate.int_range(body["amount"], "amount", 1, MAX_GRANT)
    reason = validate.text(body, "reason", maximum=500) if "reason" in body else "grant"
    org = await load_org(state, org_id)
    if org["status"] == "closed":
        raise conflict("The org is closed.")
    try:
        entry = await wallet_of(request).grant(org_id, amount, reason, admin.token_id)
    except BalanceCeiling as exc:
        message = (
            f"The balance may hold at most {MAX_BALANCE} micro-credits: at most {exc.room} more."
        )
        raise ApiError(400, "InvalidParameter", message) from None
    balance = await wallet_of(request).balance(org_id)
    return JSONResponse({"id": entry, "amount": amount, "balance": balance}, status_code=201)


async def _refund(
    request: Request, state: ControlState, actor: str, org_id: str, body: dict[str, Any]
) -> JSONResponse:
    task_id = validate.text(body, "task_id", maximum=128)
    amount = (
        validate.int_range(body["amount"], "amount", 1, MAX_GRANT) if "amount" in body else None
    )
    reason = validate.text(body, "reason", maximum=500) if "reason" in body else "refund"
    await load_org(state, org_id)
    try:
        entry = await wallet_of(request).refund(org_id, task_id, amount, reason, actor)
    except LookupError:
        raise ApiError(404, "NotFound", "No charge for that task in this org.") from None
    except ValueError as exc:
        raise conflict(f"Refund refused: {exc}.") from None
    balance = await wallet_of(request).balance(org_id)
    return JSONResponse({"id": entry, "kind": "refund", "balance": balance}, status_code=201)


async def get_balance(request: Request) -> JSONResponse:
    state: ControlState = request.app.state.control
    await admin_for(request)
    org_id = request.path_params["org"]
    await load_org(state, org_id)
    return JSONResponse(await wallet_of(request).balance(org_id))


LEDGER_COLUMNS = ["id", "kind", "amount", "key_id", "task_id", "reason", "actor", "created_at"]


def ledger_json(row: Any) -> dict[str, Any]:
    return columns_json(row, LEDGER_COLUMNS, times=("created_at",))


def reservation_json(row: Any) -> dict[str, Any]:
    audio = row["generate_audio"]
    return {
        "id": row["id"],
        "key_id": row["key_id"],
        "amount": row["amount"],
        "model": row["model"],
        "tier": row["tier"],
        "generate_audio": None if audio is None else bool(audio),
        "task_id": row["task_id"],
        "status": row["status"],
        "callback_webhook": row["callback_webhook"],
        "created_at": rfc3339(row["created_at"]),
        "settled_at": rfc3339(row["settled_at"]),
    }


def task_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "key_id": row["key_id"],
        "model": row["model"],
        "service_tier": row["service_tier"],
        "status": row["status"],
        "reserved": row["reserved"],
        "charged": row["charged"],
        "tokens": row["tokens"],
        # Micro-credits per million tokens the task is charged at, fixed when it was reserved
        # (exact: `n` or `n/d`); None for tasks reserved before prices were recorded.
        "unit_price": row["unit_price"],
        "callback_webhook": row["callback_webhook"],
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
        "finished_at": rfc3339(row["finished_at"]),
        # When the gateway's copy of the video was deleted (retention, or the account's purge).
        "video_deleted_at": rfc3339(row["video_deleted_at"]),
    }


TASK_COLUMNS = [
    "id",
    "key_id",
    "model",
    "service_tier",
    "status",
    "reserved",
    "charged",
    "tokens",
    "callback_webhook",
    "created_at",
    "updated_at",
    "finished_at",
    "video_deleted_at",
]


async def get_ledger(request: Request) -> Response:
    """The org's ledger entries (grants, charges, refunds), newest first, with its
    reservations (held, settled or released) beside them (CSV: the entries, every page)."""
    state: ControlState = request.app.state.control
    await admin_for(request)
    org_id = request.path_params["org"]
    csv = csvout.wants_csv(request)
    await load_org(state, org_id)
    limit = page_limit(request)

    async def read(cursor: str | None) -> dict[str, Any]:
        return await newest(
            state, "ledger", ledger_json, ["org_id=?"], [org_id], limit, cursor or None
        )

    if csv:
        return await csvout.stream_pages(request, LEDGER_COLUMNS, read, "ledger")
    page = await read(request.query_params.get("cursor"))
    holds = await dbm.fetch_all(
        state.db,
        "SELECT * FROM reservations WHERE org_id=? ORDER BY created_at DESC LIMIT 100",
        org_id,
    )
    return JSONResponse(page | {"reservations": [reservation_json(hold) for hold in holds]})


TASK_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "expired")


async def list_tasks(request: Request) -> Response:
    """The org's generation tasks with their status and cost, newest first (CSV: every
    page)."""
    state: ControlState = request.app.state.control
    await admin_for(request)
    org_id = request.path_params["org"]
    csv = csvout.wants_csv(request)
    await load_org(state, org_id)
    limit = page_limit(request)
    status = request.query_params.get("status")
    if status and status not in TASK_STATUSES:
        raise bad_request("`status` is not a task status.")

    clauses, args = ["org_id=?"], [org_id]
    if status:
        clauses.append("status=?")
        args.append(status)
    order = ("created_at", "id")

    async def read(cursor: str | None) -> dict[str, Any]:
        return await newest(state, "tasks", task_json, clauses, args, limit, cursor or None, order)

    return await csvout.page_or_csv(request, csv, TASK_COLUMNS, read, "tasks")
