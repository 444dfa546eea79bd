"""The credits ledger for edges running apart from the control plane (msgpack over HTTP; the
`edge` or `admin` scope). One call per step of a create's life; the control plane stays the one
writer of SQLite, so reservations stay atomic whichever edge asks."""

from __future__ import annotations

from typing import Any

import msgpack
from starlette.requests import Request
from starlette.responses import Response

from control.api.access import edge_for
from control.http import bad_request
from control.store.wallet import DatabaseWallet
from proxy.core.wallet import Hold

MSGPACK = "application/msgpack"


async def _args(request: Request) -> dict[str, Any]:
    await edge_for(request)
    try:
        args = msgpack.unpackb(await request.body())
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        raise bad_request("The body is not msgpack.") from None
    if not isinstance(args, dict):
        raise bad_request("The body must be a msgpack map.")
    return args


def _answer(value: Any) -> Response:
    return Response(msgpack.packb({"result": value}), media_type=MSGPACK)


def _text(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value:
        raise bad_request(f"`{name}` must be a non-empty string.")
    return value


async def wallet_call(request: Request) -> Response:
    """One wallet operation for an edge apart: reserve, assign, release, settle, owner,
    org_tasks, unsettled_tasks, video_deleted, idempotency_claim/finish/release."""
    args = await _args(request)
    wallet: DatabaseWallet = request.app.state.wallet
    op = request.path_params["op"]
    if op == "reserve":
        try:
            hold = Hold(**args)
        except TypeError:
            raise bad_request("`reserve` takes the fields of a Hold.") from None
        if not isinstance(hold.amount, int) or hold.amount < 0:
            raise bad_request("`amount` must be a non-negative integer.")
        refusal = await wallet.reserve(hold)
        return _answer(None if refusal is None else [refusal.code, refusal.message])
    if op == "assign":
        await wallet.assign(_text(args, "request_id"), _text(args, "task_id"))
        return _answer(None)
    if op == "release":
        await wallet.release(_text(args, "request_id"))
        return _answer(None)
    if op == "settle":
        tokens = args.get("completion_tokens")
        if tokens is not None and not isinstance(tokens, int):
            raise bad_request("`completion_tokens` must be an integer.")
        charged = await wallet.settle(_text(args, "task_id"), _text(args, "status"), tokens)
        return _answer(charged)
    if op == "owner":
        return _answer(await wallet.owner(_text(args, "task_id")))
    if op == "org_tasks":
        since, limit = args.get("since", 0), args.get("limit", 500)
        if not isinstance(since, int | float) or not isinstance(limit, int):
            raise bad_request("`since` and `limit` must be numbers.")
        return _answer(await wallet.org_tasks(_text(args, "org_id"), float(since), limit))
    if op == "unsettled_tasks":
        limit = args.get("limit", 1000)
        if not isinstance(limit, int):
            raise bad_request("`limit` must be an integer.")
        return _answer(await wallet.unsettled_tasks(limit))
    if op == "video_deleted":
        await wallet.video_deleted(_text(args, "task_id"))
        return _answer(None)
    if op == "idempotency_claim":
        claim = await wallet.idempotency_claim(
            _text(args, "org_id"),
            _text(args, "key"),
            _text(args, "digest"),
            _text(args, "request_id"),
        )
        return _answer([claim.outcome, claim.status, claim.body])
    if op == "idempotency_finish":
        status, body = args.get("status"), args.get("body")
        if not isinstance(status, int) or not isinstance(body, bytes):
            raise bad_request("`status` must be an integer and `body` bytes.")
        await wallet.idempotency_finish(
            _text(args, "org_id"), _text(args, "key"), _text(args, "request_id"), status, body
        )
        return _answer(None)
    if op == "idempotency_release":
        await wallet.idempotency_release(
            _text(args, "org_id"), _text(args, "key"), _text(args, "request_id")
        )
        return _answer(None)
    if op == "events":  # edges of the release before POST /v1/edge/events (drop in the next)
        task = args.get("task")
        if not isinstance(task, dict):
            raise bad_request("`task` must be a task object.")
        return _answer(await request.app.state.outbox.task_status(task))
    raise bad_request(f"Unknown wallet operation `{op}`.")
