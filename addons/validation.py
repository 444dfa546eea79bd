"""Refuses malformed create bodies (400 with `param`) and models the key may not use (403),
before anything is relayed. The body is forwarded untouched."""

from __future__ import annotations

from mitmproxy import http

from addons.respond import context, refuse
from proxy.errors import EdgeError, access_denied
from proxy.seedance import parse_create


class Validation:
    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response:
            return
        ctx = context(flow)
        if ctx.route is None or ctx.route.name != "tasks.create":
            if ctx.route is not None:
                ctx.task_id = ctx.route.task_id
            return
        parsed = parse_create(flow.request.raw_content or b"")
        if isinstance(parsed, EdgeError):
            refuse(flow, parsed)
            return
        ctx.model = parsed.model
        ctx.create = parsed
        assert ctx.identity is not None
        allowed = ctx.identity.key.models
        if allowed is not None and parsed.model not in allowed:
            refuse(flow, access_denied(f"The key may not use the model `{parsed.model}`."))
