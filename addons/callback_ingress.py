"""The edge between the upstream's task callbacks and the customer's webhook endpoints.

A create's `callback_url` must be a registered endpoint of the org; it is relayed as an ingress
URL of the edge's own (proxy/core/callback_tokens.py). The upstream's POSTs to it are answered
here, once the task watch has taken the status: events into the outbox (signed delivery with
retries, control/jobs/delivery.py), slots freed and credits settled when the task ended.
"""

from __future__ import annotations

import json
import logging
import os

from mitmproxy import ctx, http

from addons.respond import context, refuse
from proxy.context import RequestContext
from proxy.core.callback_tokens import CallbackTarget, derive_secret, ingress_url, read_token
from proxy.errors import invalid_parameter, not_found
from proxy.options import declare
from proxy.services import EdgeServices

log = logging.getLogger(__name__)


def listen_address() -> tuple[str, int] | None:
    """Where this mitmproxy listens (port 0 resolved; None: not yet); a wildcard host reads as
    loopback."""
    try:
        server = ctx.master.addons.get("proxyserver")
        host, port = server.listen_addrs()[0][:2]
    except (IndexError, AttributeError):  # no master, or not listening (yet)
        return None
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return host, port


class Callbacks:
    def __init__(self, services: EdgeServices) -> None:
        self.services = services
        self.secret = b""

    def load(self, loader) -> None:
        declare(
            loader,
            "nextapi_public_url",
            "nextapi_callback_secret_env",
        )

    def configure(self, updated: set[str]) -> None:
        if "nextapi_callback_secret_env" in updated or not self.secret:
            material = os.environ.get(ctx.options.nextapi_callback_secret_env) or os.environ.get(
                "NEXTAPI_UPSTREAM_KEY", ""
            )
            self.secret = derive_secret(material)

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response:
            return
        rctx = context(flow)
        if rctx.route is None:
            return
        if rctx.route.name == "callbacks.ingress":
            await self._ingress(flow, rctx.route.token or "")
        elif rctx.route.name == "tasks.create" and rctx.create is not None:
            assert rctx.identity is not None
            self._rewrite(flow, rctx, rctx.identity.org.webhooks)

    def _rewrite(self, flow: http.HTTPFlow, rctx: RequestContext, webhooks: dict[str, str]) -> None:
        """A `callback_url` must be one of the org's registered endpoints, exactly. The upstream
        is given the edge's ingress instead (or nothing, if the edge has no public URL: the
        events then come from gets and the reconciler); the customer hears from the outbox."""
        assert rctx.create is not None
        body = rctx.create.body
        url = body.get("callback_url")
        if url is None:
            return
        webhook_id = webhooks.get(url) if isinstance(url, str) else None
        if webhook_id is None:
            message = "`callback_url` must be one of the org's registered webhook endpoints."
            refuse(flow, invalid_parameter(message, "callback_url"))
            return
        rctx.callback_webhook = webhook_id
        public = self.services.public_origin()
        if public:
            target = CallbackTarget(webhook_id, rctx.org_id or "")
            body["callback_url"] = ingress_url(public, self.secret, target)
        else:
            del body["callback_url"]
        flow.request.content = json.dumps(body, ensure_ascii=False).encode()

    async def _ingress(self, flow: http.HTTPFlow, token: str) -> None:
        target = read_token(self.secret, token)
        if target is None:
            refuse(flow, not_found())  # a forged or garbled token: nothing is here
            return
        try:
            task = json.loads(flow.request.raw_content or b"")
            valid = isinstance(task.get("id"), str) and isinstance(task.get("status"), str)
        except (ValueError, AttributeError):
            valid = False
        if not valid:
            refuse(flow, invalid_parameter("The callback body is not a task object."))
            return
        # Answered only once the events are in the outbox and the task is settled: a crash
        # before this leaves the upstream to call again. A succeeded task's video is copied
        # first, so the webhooks carry the gateway's own links.
        task = await self.services.present(task, target.org_id)
        await self.services.watch.seen(task)
        flow.response = http.Response.make(200, b"{}", {"Content-Type": "application/json"})
