"""API keys: create (secret shown once), list, read, change, revoke, rotate with grace."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from control.api import csvout, rows, schemas, validate
from control.api.access import admin_for
from control.api.orgs import load_org, require_open
from control.http import (
    bad_request,
    conflict,
    rfc3339,
)
from control.store import db as dbm
from control.store.database import Row
from control.store.state import ControlState
from proxy.core import keys


def key_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "org_id": row["org_id"],
        "name": row["name"],
        "environment": row["environment"],
        "prefix": f"nk_{row['environment']}_{row['id']}_",
        "status": row["status"],
        "allowed_ips": dbm.loads(row["allowed_ips"]),
        "models": dbm.loads(row["models"]),
        "rate_limit": dbm.loads(row["rate_limit"]),
        "spend_limit": dbm.loads(row["spend_limit"]),
        "expires_at": rfc3339(row["expires_at"]),
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
        "revoked_at": rfc3339(row["revoked_at"]),
        "rotated_at": rfc3339(row["rotated_at"]),
        "previous_secret_valid_until": rows.grace_end(row["previous_valid_until"]),
    }


async def load_key(state: ControlState, key_id: str) -> Row:
    return await rows.load(state, "api_keys", key_id, "Key")


COLUMNS = validate.COLUMNS | {
    "models": lambda body: dbm.dumps(validate.models(body["models"])),
    "expires_at": lambda body: validate.optional_time(body["expires_at"], "expires_at"),
}


async def create_key(request: Request) -> JSONResponse:
    state: ControlState = request.app.state.control
    admin = await admin_for(request)
    org_id = request.path_params["org"]
    body = await schemas.body_of(request, schemas.KeyCreate)
    environment = body.get("environment", "live")
    if environment not in ("live", "test"):
        raise bad_request("`environment` must be `live` or `test`.")
    values = {"allowed_ips": "[]", "models": None, "rate_limit": "{}", "spend_limit": None}
    values |= {"expires_at": None} | validate.changes(body, COLUMNS)
    await load_org(state, org_id)
    secret, secret_hash = await asyncio.to_thread(keys.generate_key, environment)
    key_id = keys.parse_key(secret).key_id  # type: ignore[union-attr]
    created = dbm.now()
    async with state.transaction() as tx:
        await require_open(tx, org_id)  # here, not before hashing: the org may close meanwhile
        await tx.execute(
            "INSERT INTO api_keys (id, org_id, name, environment, secret_hash, allowed_ips, "
            "models, rate_limit, spend_limit, expires_at, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                key_id,
                org_id,
                values["name"],
                environment,
                secret_hash,
                values["allowed_ips"],
                values["models"],
                values["rate_limit"],
                values["spend_limit"],
                values["expires_at"],
                created,
                created,
            ),
        )
        await state.audit(tx, admin.token_id, "key.create", key_id, {"org_id": org_id})
    await state.publish()
    result = key_json(await load_key(state, key_id)) | {"key": secret}
    return JSONResponse(result, status_code=201)


KEY_COLUMNS = [
    "id",
    "org_id",
    "name",
    "environment",
    "prefix",
    "status",
    "allowed_ips",
    "models",
    "rate_limit",
    "spend_limit",
    "expires_at",
    "created_at",
    "updated_at",
    "revoked_at",
    "rotated_at",
    "previous_secret_valid_until",
]


async def list_keys(request: Request) -> Response:
    """The org's keys in creation order, never their secrets (CSV: every page)."""
    state: ControlState = request.app.state.control
    await admin_for(request)
    org_id = request.path_params["org"]
    csv = csvout.wants_csv(request)
    await load_org(state, org_id)

    async def read(cursor: str | None) -> dict[str, Any]:
        return await rows.page(
            request, state, "api_keys", key_json, "org_id=?", org_id, cursor=cursor
        )

    return await csvout.page_or_csv(request, csv, KEY_COLUMNS, read, "keys")


async def get_key(request: Request) -> JSONResponse:
    state: ControlState = request.app.state.control
    await admin_for(request)
    return JSONResponse(key_json(await load_key(state, request.path_params["key"])))


async def patch_key(request: Request) -> JSONResponse:
    state: ControlState = request.app.state.control
    admin = await admin_for(request)
    key_id = request.path_params["key"]
    body = await schemas.body_of(request, schemas.KeyPatch)
    changes = validate.changes(body, COLUMNS)
    await load_key(state, key_id)
    validate.status(body, changes, ("active", "suspended"), " (revoke with DELETE)")

    def check(key: Row) -> str:
        """On the key as the write transaction reads it: a revocation committed since the
        request began is never undone by it."""
        if key["status"] == "revoked":
            raise conflict("A revoked key cannot be changed.")
        if changes.get("status", key["status"]) == key["status"]:
            return "key.update"
        return "key.suspend" if changes["status"] == "suspended" else "key.unsuspend"

    await rows.update(
        state, admin, "api_keys", key_id, changes, "key.update", list(body), check=check
    )
    return JSONResponse(key_json(await load_key(state, key_id)))


async def revoke_key(request: Request) -> JSONResponse:
    state: ControlState = request.app.state.control
    admin = await admin_for(request)
    key_id = request.path_params["key"]
    await load_key(state, key_id)
    revoked = dbm.now()
    async with state.transaction() as tx:
        # once: a second revocation (a retry, or two at once) changes nothing and audits nothing
        cursor = await tx.execute(
            "UPDATE api_keys SET status='revoked', revoked_at=?, updated_at=?, "
            "previous_secret_hash=NULL, previous_valid_until=NULL "
            "WHERE id=? AND status!='revoked'",
            (revoked, revoked, key_id),
        )
        if cursor.rowcount:
            await state.audit(tx, admin.token_id, "key.revoke", key_id)
    if cursor.rowcount:
        await state.publish()
    return JSONResponse(key_json(await load_key(state, key_id)))


ROTATED_MEANWHILE = (
    "The key was rotated by another request while this one was being made; that request holds "
    "the new secret. Read the key, and rotate again if another new secret is still wanted."
)


async def rotate_key(request: Request) -> JSONResponse:
    """A new secret under the same key id; the old one keeps working for `grace_seconds`.

    The rotation applies to the secret the key had when the request came: if another
    rotation got in first, this one is refused (409) rather than applied on top of it, which
    would end the grace the first one promised for the old secret, and give a new secret that
    works only for this request's grace (none, by default) to a caller told it is the key's."""
    state: ControlState = request.app.state.control
    admin = await admin_for(request)
    key_id = request.path_params["key"]
    body = await schemas.body_of(request, schemas.Rotate)
    grace = validate.grace_seconds(body, 0)
    seen = await load_key(state, key_id)
    if seen["status"] == "revoked":
        raise conflict("A revoked key cannot be rotated.")
    # Hashed before the transaction: Argon2id would hold the one write lock for its duration.
    secret, secret_hash = await asyncio.to_thread(keys.generate_key, seen["environment"], key_id)
    rotated = dbm.now()
    async with state.transaction() as tx:
        key = await dbm.fetch_one(
            tx,
            f"SELECT status, secret_hash FROM api_keys WHERE id=?{tx.dialect.for_update}",
            key_id,
        )
        if key is None or key["status"] == "revoked":
            raise conflict("A revoked key cannot be rotated.")
        if key["secret_hash"] != seen["secret_hash"]:
            raise conflict(ROTATED_MEANWHILE)
        await tx.execute(
            "UPDATE api_keys SET secret_hash=?, previous_secret_hash=?, previous_valid_until=?, "
            "rotated_at=?, updated_at=? WHERE id=?",
            (
                secret_hash,
                key["secret_hash"] if grace else None,
                rotated + grace if grace else None,
                rotated,
                rotated,
                key_id,
            ),
        )
        await state.audit(tx, admin.token_id, "key.rotate", key_id, {"grace_seconds": grace})
    await state.publish()
    return JSONResponse(key_json(await load_key(state, key_id)) | {"key": secret})
