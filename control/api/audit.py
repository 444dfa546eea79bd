"""The audit log of admin actions, newest first."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from control.api.access import admin_for
from control.api.rows import cut
from control.http import decode_cursor, page_limit, rfc3339
from control.store import db as dbm
from control.store.state import ControlState


def audit_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "ts": rfc3339(row["ts"]),
        "actor": row["actor"],
        "action": row["action"],
        "target": row["target"],
        "detail": json.loads(row["detail"]),
    }


async def list_audit(request: Request) -> JSONResponse:
    state: ControlState = request.app.state.control
    await admin_for(request)
    limit = page_limit(request)
    cursor = request.query_params.get("cursor")
    before = decode_cursor(cursor, int)[0] if cursor else 2**62
    rows = await dbm.fetch_all(
        state.db, "SELECT * FROM audit WHERE id<? ORDER BY id DESC LIMIT ?", before, limit + 1
    )
    rows, next_cursor = cut(rows, limit, "id")
    items = [audit_json(row) for row in rows]
    return JSONResponse({"items": items, "next_cursor": next_cursor})
