"""--demo: the simulator as the upstream and the Stripe simulator as Stripe, then a demo org,
key and credit pack through the control plane's own API, and examples that work as pasted."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys

import httpx

from launch.serving import AppServer
from launch.settings import Settings, split_hostport
from launch.simulator import start_simulator
from simulator.config import SimulatorConfig
from simulator.stripe.app import create_app as create_stripe_app
from simulator.stripe.state import StripeState

DEMO_ORG = {"name": "Demo org", "email": "demo@example.com"}
DEMO_MODEL = "dreamina-seedance-2-0-260128"  # a current model (see config/models.toml)
DEMO_CREDITS = 100 * 1_000_000  # 100 credits, in micro-credits
DEMO_PACK = "demo-10"
DEMO_PACK_BODY = {"credits": 10 * 1_000_000, "amount": 500, "currency": "usd", "name": "10 credits"}
STRIPE_WEBHOOK_PATH = "/v1/integrations/stripe/webhook"


async def start_demo_simulator(settings: Settings, stack: contextlib.AsyncExitStack) -> None:
    """The demo's upstream: the simulator on `simulator_listen`, with the upstream key it asks
    for (NEXTAPI_UPSTREAM_KEY's, or a new one); `settings.upstream` then points at it."""
    upstream_key = os.environ.get("NEXTAPI_UPSTREAM_KEY") or "sim_" + secrets.token_hex(16)
    os.environ["NEXTAPI_UPSTREAM_KEY"] = upstream_key
    host, port = split_hostport(settings.simulator_listen, "simulator_listen")
    server = await start_simulator(SimulatorConfig(api_key=upstream_key), host, port)
    stack.push_async_callback(server.stop)
    settings.upstream = f"http://{server.host}:{server.port}"
    print(f"simulator listening on {server.host}:{server.port}", flush=True)


async def start_demo_stripe(stack: contextlib.AsyncExitStack) -> StripeState | None:
    """The demo's Stripe: the Stripe simulator on a free loopback port, its key and signing
    secret set for the control plane, unless the environment names a Stripe key of its own."""
    if os.environ.get("NEXTAPI_STRIPE_SECRET_KEY"):
        return None
    state = StripeState(
        api_key="sk_test_demo_" + secrets.token_hex(12),
        webhook_secret="whsec_demo_" + secrets.token_hex(16),
    )
    server = AppServer(create_stripe_app(state), "127.0.0.1", 0)
    await server.start()
    stack.push_async_callback(server.stop)
    os.environ["NEXTAPI_STRIPE_SECRET_KEY"] = state.api_key
    os.environ["NEXTAPI_STRIPE_API_BASE"] = f"http://{server.host}:{server.port}"
    os.environ.setdefault("NEXTAPI_STRIPE_WEBHOOK_SECRET", state.webhook_secret)
    print(f"stripe simulator listening on {server.host}:{server.port}", flush=True)
    return state


async def create_demo_data(
    control_url: str,
    admin_token: str,
    edge: tuple[str, int],
    stripe: StripeState | None = None,
) -> str:
    if stripe is not None:  # its events go to this control plane's Stripe webhook
        stripe.webhook_url = control_url + STRIPE_WEBHOOK_PATH
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(base_url=control_url, headers=headers, trust_env=False) as client:
        orgs = (await client.get("/v1/orgs", params={"limit": 1000})).raise_for_status().json()
        demo = next((o for o in orgs["items"] if o["email"] == DEMO_ORG["email"]), None)
        if demo is None or demo["status"] != "active":
            demo = (await client.post("/v1/orgs", json=DEMO_ORG)).raise_for_status().json()
        grant = {"amount": DEMO_CREDITS, "reason": "demo credits"}
        (await client.post(f"/v1/orgs/{demo['id']}/credits", json=grant)).raise_for_status()
        created = await client.post(f"/v1/orgs/{demo['id']}/keys", json={"name": "demo key"})
        key = created.raise_for_status().json()["key"]
        pack = await client.put(f"/v1/credit-packs/{DEMO_PACK}", json=DEMO_PACK_BODY)
        pack.raise_for_status()
    host, port = edge
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    base_url = f"http://{host}:{port}/api/v3"
    body = json.dumps(
        {"model": DEMO_MODEL, "content": [{"type": "text", "text": "a cat surfing a wave"}]}
    )
    sdk_example = "\n".join(
        [
            f"  {sys.executable} - <<'PY'",
            "from byteplussdkarkruntime import Ark",
            f"client = Ark(base_url={base_url!r}, api_key={key!r})",
            "task = client.content_generation.tasks.create(",
            f"    model={DEMO_MODEL!r}, content=[{{'type': 'text', 'text': 'a cat surfing'}}]",
            ")",
            "print(task.id, client.content_generation.tasks.get(task_id=task.id).status)",
            "PY",
        ]
    )
    print(
        f"""
NextAPI Edge demo is running.
  demo org:    {demo["id"]}
  demo key:    {key}
  admin token: {admin_token}
  control:     {control_url}

Create a task (curl):
  curl -s {base_url}/contents/generations/tasks \\
    -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\
    -d '{body}'

Or with the official SDK (pip install 'byteplus-python-sdk-v2[ark]' sniffio):
{sdk_example}
A task that succeeded links its video on this edge (`content.video_url`): a signed link that
works for 24 hours and takes Range requests; the video is kept for the org's retention (7 days).

Request log (admin):
  curl -s {control_url}/v1/orgs/{demo["id"]}/requests -H 'Authorization: Bearer {admin_token}'
{_buying(control_url, demo["id"], admin_token, stripe)}""",
        flush=True,
    )
    return key


def _buying(control_url: str, org_id: str, admin_token: str, stripe: StripeState | None) -> str:
    auth = f"-H 'Authorization: Bearer {admin_token}'"
    where = "the Stripe simulator stands in for Stripe" if stripe else "through your Stripe"
    return f"""
Buy credits ({where}): a checkout for the pack {DEMO_PACK!r};
open its "url" and press Pay, and the balance grows by 10 credits.
  curl -s {control_url}/v1/orgs/{org_id}/checkout {auth} \\
    -H 'Content-Type: application/json' -d '{{"pack": "{DEMO_PACK}"}}'
  curl -s {control_url}/v1/orgs/{org_id}/balance {auth}
"""
