"""Liveness, readiness, metrics, admin tokens and the API schema."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse

from control.api import rows, validate
from control.api.access import admin_for
from control.http import ApiError, bad_request, json_body, rfc3339
from control.store import db as dbm
from control.store.adminauth import SCOPES, new_token
from control.store.state import ControlState
from proxy.auth import keys


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    state: ControlState = request.app.state.control
    try:
        await dbm.fetch_one(state.db, "SELECT 1")
    except Exception:
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ready", "policy_version": state.snapshot["version"]})


async def metrics(request: Request) -> PlainTextResponse:
    state: ControlState = request.app.state.control
    lines = [
        "# TYPE nextapi_policy_version gauge",
        f"nextapi_policy_version {state.snapshot['version']}",
    ]
    for name, value in request.app.state.metrics().items():
        lines += [f"# TYPE {name} counter", f"{name} {value}"]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


async def create_admin_token(request: Request) -> JSONResponse:
    """A new admin token with the given scopes; the token is shown this once."""
    state: ControlState = request.app.state.control
    admin = await admin_for(request)
    body = await json_body(request)
    validate.only_fields(body, {"name", "scopes"})
    name = validate.text(body, "name")
    scopes = body.get("scopes", ["read"])
    if (
        not isinstance(scopes, list)
        or not scopes
        or not all(isinstance(scope, str) for scope in scopes)
        or set(scopes) - set(SCOPES)
    ):
        raise bad_request(f"`scopes` must be a non-empty list of {', '.join(SCOPES)}.")
    token = new_token()
    token_id = "adm_" + secrets.token_hex(8)
    created = dbm.now()
    token_hash = await asyncio.to_thread(keys.hash_secret, token)
    async with state.transaction() as tx:
        await tx.execute(
            "INSERT INTO admin_tokens (id, name, token_hash, scopes, source, created_at) "
            "VALUES (?, ?, ?, ?, 'api', ?)",
            (token_id, name, token_hash, json.dumps(sorted(scopes)), created),
        )
        await state.audit(tx, admin.token_id, "admin_token.create", token_id, {"scopes": scopes})
    body = {"id": token_id, "name": name, "scopes": sorted(scopes), "created_at": rfc3339(created)}
    return JSONResponse(body | {"token": token}, status_code=201)


def admin_token_json(row: Any) -> dict[str, Any]:
    """A token as an operator sees it: never its secret nor its hash."""
    return {
        "id": row["id"],
        "name": row["name"],
        "scopes": json.loads(row["scopes"]),
        "source": row["source"],
        "created_at": rfc3339(row["created_at"]),
        "last_used_at": rfc3339(row["last_used_at"]),
        "revoked_at": rfc3339(row["revoked_at"]),
    }


async def list_admin_tokens(request: Request) -> JSONResponse:
    """Who holds access: every admin token (revoked ones too) with its name, scopes, source,
    creation and last use, oldest first; never the token or its hash."""
    state: ControlState = request.app.state.control
    await admin_for(request)
    async with state.transaction() as tx:
        await state.admin.flush_last_used(tx)
    return JSONResponse(await rows.page(request, state, "admin_tokens", admin_token_json))


async def revoke_admin_token(request: Request) -> JSONResponse:
    state: ControlState = request.app.state.control
    admin = await admin_for(request)
    token_id = request.path_params["token"]
    async with state.transaction() as tx:
        cursor = await tx.execute(
            "UPDATE admin_tokens SET revoked_at=? WHERE id=? AND revoked_at IS NULL",
            (dbm.now(), token_id),
        )
        if cursor.rowcount == 0:
            raise ApiError(404, "NotFound", "Admin token not found or already revoked.")
        await state.audit(tx, admin.token_id, "admin_token.revoke", token_id)
    state.admin.forget()
    return JSONResponse({"id": token_id, "revoked": True})
