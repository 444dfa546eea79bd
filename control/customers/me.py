"""The customer API's own routes: `/v1/me` and the org's keys, scoped to the session's org.

Each route calls the admin API's handler for the customer's org (control/api/inprocess.py), so
validation, audit and answers are the admin API's, with the customer as the actor (`clerk:
<user id>`). What only an admin of NextAPI may decide stays out of reach: a key's allowlist
and rate limits stay within the org's own, and its status is NextAPI's (suspension), so a
customer revokes a key instead. Another org's key answers 404, like one that does not exist."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from control.api import inprocess, keys
from control.api.orgs import load_org
from control.customers import accounts
from control.customers.access import Customer, customer_for
from control.http import ApiError, bad_request, json_body, not_found, rfc3339
from control.store import db as dbm
from control.store.adminauth import Admin
from control.store.state import ControlState
from proxy.core import netaddr

# Fields of a key a customer may set; `status` is NextAPI's (DELETE revokes).
KEY_FIELDS = ("name", "environment", "allowed_ips", "models", "rate_limit", "spend_limit")
KEY_FIELDS_PATCH = (*KEY_FIELDS[:1], *KEY_FIELDS[2:], "expires_at")


def acting(customer: Customer) -> Admin:
    """The admin the customer's calls run as: the audit log names the Clerk user."""
    scopes = ("admin",) if customer.is_admin else ("read",)
    return Admin(token_id=f"clerk:{customer.clerk_user_id}", scopes=scopes)


async def me(request: Request) -> JSONResponse:
    """Who is signed in, in which org, with which role."""
    customer = await customer_for(request)
    state: ControlState = request.app.state.control
    person = await accounts.user(state.db, customer.clerk_user_id)
    org = await load_org(state, customer.org_id)
    return JSONResponse(
        {
            "user": {
                "id": customer.clerk_user_id,
                "name": _full_name(person),
                "email": person["email"] if person is not None else None,
            },
            "org": {
                "id": org["id"],
                "name": org["name"],
                "external_id": org["external_id"],
                "status": org["status"],
                "created_at": rfc3339(org["created_at"]),
            },
            "role": customer.role,
        }
    )


def _full_name(person: Any) -> str | None:
    if person is None:
        return None
    parts = [person["first_name"], person["last_name"]]
    return " ".join(part for part in parts if part) or None


# --- keys --------------------------------------------------------------------------------------


async def list_keys(request: Request) -> Response:
    customer = await customer_for(request)
    return await inprocess.invoke(
        request,
        acting(customer),
        keys.list_keys,
        path_params={"org": customer.org_id},
        query=dict(request.query_params),
    )


async def create_key(request: Request) -> Response:
    customer = await customer_for(request, write=True)
    body = await json_body(request)
    _only(body, (*KEY_FIELDS, "expires_at"))
    await _within_org(request, customer, body)
    return await inprocess.invoke(
        request, acting(customer), keys.create_key, path_params={"org": customer.org_id}, body=body
    )


async def get_key(request: Request) -> Response:
    customer = await customer_for(request)
    key_id = await _own_key(request, customer)
    return await inprocess.invoke(
        request, acting(customer), keys.get_key, path_params={"key": key_id}
    )


async def patch_key(request: Request) -> Response:
    customer = await customer_for(request, write=True)
    key_id = await _own_key(request, customer)
    body = await json_body(request)
    if "status" in body:
        raise ApiError(
            400,
            "InvalidParameter",
            "A key's status is set by NextAPI: revoke a key with DELETE instead.",
        )
    _only(body, KEY_FIELDS_PATCH)
    await _within_org(request, customer, body)
    return await inprocess.invoke(
        request,
        acting(customer),
        keys.patch_key,
        path_params={"key": key_id},
        body=body,
        method="PATCH",
    )


async def revoke_key(request: Request) -> Response:
    customer = await customer_for(request, write=True)
    key_id = await _own_key(request, customer)
    return await inprocess.invoke(
        request, acting(customer), keys.revoke_key, path_params={"key": key_id}, method="DELETE"
    )


async def rotate_key(request: Request) -> Response:
    customer = await customer_for(request, write=True)
    key_id = await _own_key(request, customer)
    body = await json_body(request) if await request.body() else {}
    return await inprocess.invoke(
        request, acting(customer), keys.rotate_key, path_params={"key": key_id}, body=body
    )


async def _own_key(request: Request, customer: Customer) -> str:
    """The key id of the path, if the key is the customer's org's; else 404 (as if absent)."""
    key_id = request.path_params["key"]
    state: ControlState = request.app.state.control
    row = await dbm.fetch_one(state.db, "SELECT org_id FROM api_keys WHERE id=?", key_id)
    if row is None or row["org_id"] != customer.org_id:
        raise not_found("Key")
    return key_id


def _only(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise bad_request(f"Unknown field {unknown[0]!r}: a key takes {', '.join(allowed)}.")


async def _within_org(request: Request, customer: Customer, body: dict[str, Any]) -> None:
    """A key's allowlist inside the org's, its rate limits at most the org's own."""
    state: ControlState = request.app.state.control
    org = await load_org(state, customer.org_id)
    org_networks = netaddr.parse_networks(dbm.loads(org["allowed_ips"]) or [])
    wanted = body.get("allowed_ips")
    if org_networks and isinstance(wanted, list):
        try:
            networks = netaddr.parse_networks(str(entry) for entry in wanted)
        except ValueError as exc:
            raise bad_request(f"allowed_ips: {exc}") from None
        for network in networks:
            if not any(
                network.version == own.version and network.subnet_of(own)  # type: ignore[arg-type]
                for own in org_networks
            ):
                raise bad_request(
                    f"allowed_ips: {network} is outside the organization's allowlist "
                    f"({', '.join(map(str, org_networks))})."
                )
    org_limits = dbm.loads(org["rate_limit"]) or {}
    limits = body.get("rate_limit")
    if isinstance(limits, dict):
        for name, value in limits.items():
            ceiling = org_limits.get(name)
            if isinstance(value, int) and isinstance(ceiling, int) and value > ceiling:
                raise bad_request(f"rate_limit.{name}: at most the organization's own {ceiling}.")
