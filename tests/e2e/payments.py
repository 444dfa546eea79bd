"""A gateway set up for payments: Stripe's client pointed at the Stripe simulator, which sends
its signed events to the control plane's Stripe webhook; and the calls the payment tests share.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.harness import Gateway, Simulator
from tests.e2e.stripe_sim import StripeSimulator
from tests.stripe_events import sign

WEBHOOK_PATH = "/v1/integrations/stripe/webhook"
TASKS = "/api/v3/contents/generations/tasks"


def paid_gateway(
    tmp: Path, simulator: Simulator, stripe_sim: StripeSimulator, *flags: str, **env: str
) -> Gateway:
    gateway = Gateway(
        tmp,
        simulator.url,
        simulator.api_key,
        *flags,
        env={
            "NEXTAPI_STRIPE_SECRET_KEY": stripe_sim.api_key,
            "NEXTAPI_STRIPE_API_BASE": stripe_sim.url,
            "NEXTAPI_STRIPE_WEBHOOK_SECRET": stripe_sim.webhook_secret,
            "NEXTAPI_RECONCILE_INTERVAL": "0.2",  # tasks settle without anyone polling
            **env,
        },
    )
    stripe_sim.set_webhook(gateway.control_url + WEBHOOK_PATH, deliver=True)
    return gateway


def put_pack(gw: Gateway, pack: str, credits: int, amount: int, currency: str = "usd") -> dict:
    body = {"credits": credits, "amount": amount, "currency": currency}
    response = gw.admin.put(f"/v1/credit-packs/{pack}", json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def checkout(gw: Gateway, org_id: str, pack: str, **fields: Any) -> dict[str, Any]:
    response = gw.admin.post(f"/v1/orgs/{org_id}/checkout", json={"pack": pack, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def balance(gw: Gateway, org_id: str) -> dict[str, int]:
    response = gw.admin.get(f"/v1/orgs/{org_id}/balance")
    assert response.status_code == 200, response.text
    return response.json()


def ledger(gw: Gateway, org_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    items = gw.admin.get(f"/v1/orgs/{org_id}/ledger", params={"limit": 1000}).json()["items"]
    return [entry for entry in items if kind is None or entry["kind"] == kind]


def deliver(
    gw: Gateway, payload: bytes, secret: str, *, signature: str | None = None
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    headers["Stripe-Signature"] = signature if signature is not None else sign(payload, secret)
    return httpx.post(gw.control_url + WEBHOOK_PATH, content=payload, headers=headers, timeout=10)


def wait_until(predicate: Any, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
