"""What a customer may set on the org's keys, checked before the admin API's handler: a key's
allowlist inside the org's own and its rate limits at most the org's own (the edge applies
both anyway; refusing says so), and never its status, which is NextAPI's (a suspension for
abuse is not the customer's to lift): a key to be stopped is revoked."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from control.api.orgs import load_org
from control.customers.access import Customer
from control.http import bad_request
from control.store import db as dbm
from control.store.state import ControlState
from proxy.core import netaddr


async def creatable(request: Request, customer: Customer, body: dict[str, Any]) -> None:
    await within_org(request, customer, body)


async def changeable(request: Request, customer: Customer, body: dict[str, Any]) -> None:
    if "status" in body:
        raise bad_request("A key's status is set by NextAPI: revoke a key with DELETE instead.")
    await within_org(request, customer, body)


async def within_org(request: Request, customer: Customer, body: dict[str, Any]) -> None:
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
            if not any(_inside(network, own) for own in org_networks):
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


def _inside(network: netaddr.IPNetwork, own: netaddr.IPNetwork) -> bool:
    return network.version == own.version and network.subnet_of(own)  # type: ignore[arg-type]
