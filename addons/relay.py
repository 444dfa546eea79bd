"""Relays an accepted request to Seedance with NextAPI's own upstream key.

The customer's `Authorization` never leaves the edge; the upstream key comes from the
environment only (`NEXTAPI_UPSTREAM_KEY`) and never reaches a client, a log or a record.
"""

from __future__ import annotations

import json
import os

from mitmproxy import ctx, exceptions, http
from mitmproxy.proxy.mode_specs import ProxyMode, ReverseMode

from addons.respond import context, refuse
from proxy.errors import EdgeError
from proxy.options import declare
from proxy.services import EdgeServices
from proxy.upstream.client import UpstreamClient

UPSTREAM_KEY_ENV = "NEXTAPI_UPSTREAM_KEY"


class Relay:
    def __init__(self, services: EdgeServices | None = None) -> None:
        self.services = services or EdgeServices()
        self.client: UpstreamClient | None = None

    def load(self, loader) -> None:
        declare(
            loader,
            "nextapi_upstream_timeout",
            "nextapi_upstream_connect_timeout",
        )

    def configure(self, updated: set[str]) -> None:
        timeouts = {"nextapi_upstream_timeout", "nextapi_upstream_connect_timeout", "mode"}
        if not updated & timeouts and self.client is not None:
            return
        timeout = ctx.options.nextapi_upstream_timeout
        connect_timeout = ctx.options.nextapi_upstream_connect_timeout
        if timeout <= 0 or connect_timeout <= 0:
            raise exceptions.OptionsError("upstream timeouts must be positive")
        api_key = os.environ.get(UPSTREAM_KEY_ENV, "")
        if not api_key:
            raise exceptions.OptionsError(f"{UPSTREAM_KEY_ENV} is not set")
        # The old client's connections close with it at shutdown; requests in flight finish.
        self.client = UpstreamClient(api_key, connect_timeout=connect_timeout, timeout=timeout)
        self.services.upstream = self.client
        mode = ProxyMode.parse(ctx.options.mode[0]) if ctx.options.mode else None
        if isinstance(mode, ReverseMode):
            host, port = mode.address
            self.services.upstream_origin = f"{mode.scheme}://{host}:{port}"

    async def done(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response:
            return
        assert self.client is not None
        rctx = context(flow)
        unbilled = (
            rctx.route is not None
            and rctx.route.name == "tasks.create"
            and (not rctx.holds_credits)
        )
        if rctx.identity is None or rctx.route is None or unbilled:
            # Only an authenticated request on a known route, and a create only with its credits
            # reserved, is ever relayed. Getting here otherwise means an earlier addon failed:
            # leave it to FailClosed.
            return
        request = flow.request
        origin = f"{request.scheme}://{request.host}:{request.port}"
        result = await self.client.send(
            request.method, origin, request.path, request.headers.fields, request.raw_content or b""
        )
        if isinstance(result, EdgeError):
            refuse(flow, result)
            return
        rctx.upstream_latency_ms = result.latency_ms
        if rctx.route.name == "tasks.create" and result.status == 200:
            rctx.task_id = _task_id(result.content)
        response = http.Response.make(result.status, b"", result.headers)
        # raw_content: the body goes back exactly as the upstream encoded it.
        response.raw_content = result.content
        response.headers["content-length"] = str(len(result.content))
        flow.response = response


def _task_id(content: bytes) -> str | None:
    try:
        task_id = json.loads(content).get("id")
    except (ValueError, AttributeError):
        return None
    return task_id if isinstance(task_id, str) else None
