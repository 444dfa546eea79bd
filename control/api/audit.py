"""The audit log of admin actions, newest first."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from control.api import csvout
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


AUDIT_COLUMNS = ["id", "ts", "actor", "action", "target", "detail"]


async def list_audit(request: Request) -> Response:
    """Admin actions, newest first, paged by an opaque cursor (CSV: every page)."""
    state: ControlState = request.app.state.control
    await admin_for(request)
    csv = csvout.wants_csv(request)
    limit = page_limit(request)

    async def read(cursor: str | None) -> dict[str, Any]:
        before = decode_cursor(cursor, int)[0] if cursor else 2**62
        rows = await dbm.fetch_all(
            state.db, "SELECT * FROM audit WHERE id<? ORDER BY id DESC LIMIT ?", before, limit + 1
        )
        rows, next_cursor = cut(rows, limit, "id")
        return {"items": [audit_json(row) for row in rows], "next_cursor": next_cursor}

    if csv:
        return await csvout.stream_pages(request, AUDIT_COLUMNS, read, "audit")
    return JSONResponse(await read(request.query_params.get("cursor")))
