"""Relays an accepted request to Seedance with NextAPI's own upstream key.

The customer's `Authorization` never leaves the edge; the upstream key comes from the
environment only (`NEXTAPI_UPSTREAM_KEY`) and never reaches a client, a log or a record.
"""

from __future__ import annotations

import json

from mitmproxy import http

from addons.respond import context, refuse
from proxy.errors import EdgeError
from proxy.options import declare
from proxy.services import EdgeServices


class Relay:
    def __init__(self, services: EdgeServices) -> None:
        self.services = services

    def load(self, loader) -> None:
        # Read by the services' upstream client (proxy/services.py), which the root configures.
        declare(
            loader,
            "nextapi_upstream_timeout",
            "nextapi_upstream_connect_timeout",
        )

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response:
            return
        client = self.services.upstream
        assert client is not None, "the composition root configures the services first"
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
        result = await client.send(
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
