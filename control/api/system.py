"""Liveness, readiness, metrics, admin tokens and the API schema."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from importlib import metadata
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse

from control.api import rows, validate
from control.api.access import admin_for
from control.http import ApiError, bad_request, json_body, rfc3339
from control.jobs import orphans
from control.jobs.retention import Retention
from control.store import db as dbm
from control.store.adminauth import SCOPES, new_token
from control.store.edges import EdgeRegistry
from control.store.partitions import status as partitions_status
from control.store.state import ControlState
from proxy.core import keys


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    state: ControlState = request.app.state.control
    try:
        for db in (state.db, state.log):  # ingest needs the request log's file too
            await dbm.fetch_one(db, "SELECT 1")
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


def _version() -> str:
    try:
        return metadata.version("nextapi-edge")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


VERSION = _version()


def _redis(edges: list[dict[str, Any]]) -> dict[str, Any]:
    """Redis as the edges see it: the control plane keeps no counters, so it has no Redis of
    its own; each edge says whether its shared counters answer (`redis ok`)."""
    backends = [e["counters"] for e in edges if e.get("connected") and e.get("counters")]
    on_redis = [b for b in backends if b.startswith("redis")]
    return {
        "configured": bool(on_redis),
        "ok": all(b == "redis ok" for b in on_redis) if on_redis else None,
        "edges_on_redis": len(on_redis),
        "edges_unreachable": sum(b == "redis unreachable" for b in on_redis),
    }


def _retention(retention: Retention) -> dict[str, Any]:
    last = retention.last_run
    interval = retention.interval
    return {
        "interval_hours": None if interval is None else interval / 3600,
        "last_run": None
        if last is None
        else {
            "started_at": rfc3339(last.started),
            "seconds": round(last.seconds, 3),
            "deleted": last.deleted,
            "error": last.error,
        },
        "next_run_at": None
        if last is None or interval is None
        else rfc3339(last.started + last.seconds + interval),
    }


async def _orphans(state: ControlState) -> dict[str, Any]:
    found = await orphans.status(state)
    for task in found["newest_unbilled"]:
        for name in ("created_at", "found_at"):
            task[name] = _time(task[name])
    return found | {name: _time(found[name]) for name in ("scanned_until", "checked_at")}


async def _request_log(state: ControlState) -> dict[str, Any]:
    partitions = None
    if state.log_days:  # PostgreSQL's
        partitions = [await partitions_status(state.log, table) for table in state.log_days]
    return {"backend": state.log.dialect.name, "partitions": partitions}


def _time(moment: float | None) -> str | None:
    return None if moment is None else rfc3339(moment)


async def system_status(request: Request) -> JSONResponse:
    """The system as the control plane sees it: its version and policy snapshot version, the
    edges heard from (their snapshot version and spool backlog), Redis as the edges report
    it, the retention job's last run, the tasks of creates no edge answered, and the request
    log's day partitions on PostgreSQL."""
    state: ControlState = request.app.state.control
    await admin_for(request)
    registry: EdgeRegistry = request.app.state.edges
    edges = registry.edges()
    for edge in edges:
        edge["last_seen_at"] = rfc3339(edge.pop("last_seen"))
    return JSONResponse(
        {
            "version": VERSION,
            "time": rfc3339(time.time()),
            "snapshot_version": state.snapshot["version"],
            "edges": edges,
            "redis": _redis(edges),
            "retention": _retention(request.app.state.retention),
            "orphans": await _orphans(state),
            "request_log": await _request_log(state),
        }
    )
