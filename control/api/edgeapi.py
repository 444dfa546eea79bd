"""What edges running apart from the control plane call: policy snapshots out, usage and task
statuses in (msgpack). The credits ledger has its own route (control/api/walletapi.py).

Edges authenticate with a token of scope `edge` (or `admin`)."""

from __future__ import annotations

from typing import Any

import msgpack
from starlette.requests import Request
from starlette.responses import Response

from control.api.access import edge_for
from control.api.usage import in_slices, store_usage
from control.http import bad_request
from control.store.edges import EdgeRegistry
from control.store.state import ControlState
from proxy.core.usage_records import check_record

MSGPACK = "application/msgpack"
MAX_WAIT_SECONDS = 25.0


async def get_snapshot(request: Request) -> Response:
    """The policy snapshot; with `?after=N`, waits (long poll) until a version newer than N."""
    state: ControlState = request.app.state.control
    admin = await edge_for(request)
    after_raw = request.query_params.get("after", "0")
    wait_raw = request.query_params.get("wait", "0")
    try:
        after, wait = int(after_raw), min(float(wait_raw), MAX_WAIT_SECONDS)
    except ValueError:
        raise bad_request("`after` and `wait` must be numbers.") from None
    _seen(request, admin.token_id, after)
    snapshot = await state.wait_for_snapshot(after, wait) if wait > 0 else state.snapshot
    return Response(msgpack.packb(snapshot), media_type=MSGPACK)


async def post_usage(request: Request) -> Response:
    """A batch of records from an edge's spool (usage records and security events); idempotent,
    so edges can resend."""
    state: ControlState = request.app.state.control
    records = await _edge_body(request, "The body is not a msgpack list of records.")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise bad_request("The body is not a msgpack list of records.")
    # The whole batch or nothing: the edge keeps a refused batch in its spool (and says so in
    # its log) rather than losing the records this control plane cannot read.
    for index, problem in enumerate(await in_slices(records, check_record)):
        if problem is not None:
            raise bad_request(f"record {index}: {problem}")
    await store_usage(state, records)
    return Response(msgpack.packb({"stored": len(records)}), media_type=MSGPACK)


async def post_event(request: Request) -> Response:
    """A task's status as an edge saw it, into the webhook outbox; durable when answered (the
    outbox keeps one event per task and status, so an edge may resend)."""
    body = await _edge_body(request, "The body is not msgpack.")
    task = body.get("task") if isinstance(body, dict) else None
    if not isinstance(task, dict):
        raise bad_request("`task` must be a task object.")
    queued = await request.app.state.outbox.task_status(task)
    return Response(msgpack.packb({"queued": queued}), media_type=MSGPACK)


async def _edge_body(request: Request, unreadable: str) -> Any:
    """An edge's call noted, and its msgpack body; 400 `unreadable` if it is not msgpack."""
    admin = await edge_for(request)
    _seen(request, admin.token_id, None)
    try:
        return msgpack.unpackb(await request.body())
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        raise bad_request(unreadable) from None


def _seen(request: Request, token_id: str, after: int | None) -> None:
    """Note the edge's call and what its headers report (GET /v1/system lists them)."""
    registry: EdgeRegistry = request.app.state.edges
    address = request.client.host if request.client is not None else None
    registry.seen(request.headers, address, token_id, after)
