"""The edge between the upstream's task callbacks and the customer's `callback_url`.

A create's `callback_url` is relayed as an ingress URL of the edge's own (proxy/callbacks.py).
The upstream's POSTs to it are answered here: the task's status frees its concurrency slots when
it ended, and the payload is passed on to the customer's URL (one attempt; signed, durable
delivery with retries is the webhooks' job). Without `nextapi_public_url` the edge cannot be
reached by the upstream, and `callback_url` is relayed as it is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os

import httpx
from mitmproxy import ctx, exceptions, http

from addons.respond import context, refuse
from proxy.callbacks import CallbackTarget, derive_secret, ingress_url, read_token
from proxy.errors import invalid_parameter, not_found
from proxy.services import EdgeServices

log = logging.getLogger(__name__)
FORWARD_TIMEOUT = 5.0


def listen_address() -> tuple[str, int]:
    """Where this mitmproxy listens (port 0 resolved); a wildcard host reads as loopback."""
    server = ctx.master.addons.get("proxyserver")
    host, port = server.listen_addrs()[0][:2]
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return host, port


class Callbacks:
    def __init__(self, services: EdgeServices) -> None:
        self.services = services
        self.secret = b""
        self.client: httpx.AsyncClient | None = None
        self.forwarding: set[asyncio.Task[None]] = set()

    def load(self, loader) -> None:
        loader.add_option(
            "nextapi_public_url",
            str,
            "",
            "The edge's URL as the upstream reaches it, for task callbacks (empty: callbacks "
            "go straight to the customer; `auto`: this listener's own address, for local use).",
        )
        loader.add_option(
            "nextapi_callback_secret_env",
            str,
            "NEXTAPI_CALLBACK_SECRET",
            "Environment variable with the key that signs callback URLs (default: derived from "
            "the upstream key, which every edge shares).",
        )

    def configure(self, updated: set[str]) -> None:
        url = ctx.options.nextapi_public_url
        if url and url != "auto" and not url.startswith(("http://", "https://")):
            raise exceptions.OptionsError("nextapi_public_url must be an http(s) URL or auto")
        material = os.environ.get(ctx.options.nextapi_callback_secret_env) or os.environ.get(
            "NEXTAPI_UPSTREAM_KEY", ""
        )
        self.secret = derive_secret(material)

    def running(self) -> None:
        self.client = httpx.AsyncClient(timeout=FORWARD_TIMEOUT, trust_env=False)

    async def done(self) -> None:
        if self.forwarding:
            await asyncio.wait(self.forwarding, timeout=FORWARD_TIMEOUT)
        if self.client is not None:
            await self.client.aclose()

    def public_url(self) -> str:
        url = ctx.options.nextapi_public_url
        if url == "auto":
            host, port = listen_address()
            return f"http://{host}:{port}"
        return url

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response:
            return
        rctx = context(flow)
        if rctx.route is None:
            return
        if rctx.route.name == "callbacks.ingress":
            await self._ingress(flow, rctx.route.token or "")
        elif rctx.route.name == "tasks.create" and rctx.create is not None:
            self._rewrite(flow, rctx.create.body, rctx.org_id or "")

    def _rewrite(self, flow: http.HTTPFlow, body: dict, org_id: str) -> None:
        url = body.get("callback_url")
        public = self.public_url()
        if url is None or not public:
            return
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            refuse(
                flow, invalid_parameter("`callback_url` must be an http(s) URL.", "callback_url")
            )
            return
        body["callback_url"] = ingress_url(public, self.secret, CallbackTarget(url, org_id))
        flow.request.content = json.dumps(body, ensure_ascii=False).encode()

    async def _ingress(self, flow: http.HTTPFlow, token: str) -> None:
        target = read_token(self.secret, token)
        if target is None:
            refuse(flow, not_found())  # a forged or garbled token: nothing is here
            return
        raw = flow.request.raw_content or b""
        try:
            task = json.loads(raw)
            task_id, status = task.get("id"), task.get("status")
        except (ValueError, AttributeError):
            refuse(flow, invalid_parameter("The callback body is not a task object."))
            return
        if isinstance(task_id, str) and isinstance(status, str):
            await self.services.watch.seen(task)
        flow.response = http.Response.make(200, b"{}", {"Content-Type": "application/json"})
        forward = asyncio.create_task(self._forward(target, raw))
        self.forwarding.add(forward)
        forward.add_done_callback(self.forwarding.discard)

    async def _forward(self, target: CallbackTarget, raw: bytes) -> None:
        assert self.client is not None
        try:
            response = await self.client.post(
                target.url, content=raw, headers={"Content-Type": "application/json"}
            )
            if response.status_code >= 300:
                log.warning("callback for org %s answered %s", target.org_id, response.status_code)
        except httpx.HTTPError as exc:
            log.warning("callback for org %s failed: %s", target.org_id, type(exc).__name__)
