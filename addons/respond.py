"""Answering a flow with one of the edge's own errors (shared by the addons, not an addon)."""

from __future__ import annotations

from mitmproxy import http

from proxy.context import METADATA_KEY, RequestContext
from proxy.errors import EdgeError


def context(flow: http.HTTPFlow) -> RequestContext:
    return flow.metadata[METADATA_KEY]


def refuse(flow: http.HTTPFlow, error: EdgeError) -> None:
    ctx = context(flow)
    flow.response = http.Response.make(
        error.status, error.body(), error.response_headers(ctx.request_id)
    )
