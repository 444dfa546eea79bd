"""Refuses malformed create bodies (400 with `param`), models the catalog does not know (400) or
has retired (404, naming the replacement), values the model does not take (400), and models the
key may not use (403), before anything is relayed. The body is forwarded untouched."""

from __future__ import annotations

import time

from mitmproxy import http

from addons.respond import context, refuse
from proxy.errors import EdgeError, access_denied, invalid_parameter
from proxy.seedance.creates import check_family, parse_create
from proxy.services import EdgeServices


class Validation:
    def __init__(self, services: EdgeServices) -> None:
        self.services = services

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response:
            return
        ctx = context(flow)
        if ctx.route is None or ctx.route.name != "tasks.create":
            if ctx.route is not None:
                ctx.task_id = ctx.route.task_id
            return
        catalog = self.services.policy.snapshot.catalog
        parsed = parse_create(flow.request.raw_content or b"", catalog.reads_flags)
        if isinstance(parsed, EdgeError):
            refuse(flow, parsed)
            return
        ctx.model = parsed.model
        assert ctx.identity is not None
        allowed = ctx.identity.key.models
        if allowed is not None and parsed.model not in allowed:
            refuse(flow, access_denied(f"The key may not use the model `{parsed.model}`."))
            return
        family = catalog.match(parsed.model)
        if family is None:
            refuse(flow, invalid_parameter(f"Unknown model `{parsed.model}`.", "model"))
            return
        refusal = check_family(parsed, family, time.time())
        if refusal is not None:
            refuse(flow, refusal)
            return
        ctx.create = parsed
        ctx.family = family
