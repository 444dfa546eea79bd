"""A request's usage record, or its security event, built from what the edge learnt about it
(its context): the fields of both, and their checks, are in proxy/core/usage_records.py and
proxy/core/security_events.py."""

from __future__ import annotations

import time
from typing import Any

from proxy.context import RequestContext
from proxy.core import security_events as security


def build_record(
    ctx: RequestContext, *, method: str, status: int, bytes_in: int, bytes_out: int
) -> dict[str, Any]:
    return {
        "request_id": ctx.request_id,
        "ts": ctx.received_at,
        "org_id": ctx.org_id,
        "key_id": ctx.key_id,
        "method": method,
        "route": ctx.route.template if ctx.route else None,
        "status": status,
        "latency_ms": round((time.perf_counter() - ctx.started) * 1000, 3),
        "upstream_latency_ms": ctx.upstream_latency_ms,
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
        "credits": ctx.credits,
        "model": ctx.model,
        "task_id": ctx.task_id,
        "limited_by": ctx.limited_by,
    }


def build_security_event(ctx: RequestContext, status: int) -> dict[str, Any]:
    """The security event of a refused request (its context carries a `SecurityMark`)."""
    assert ctx.security is not None
    return {
        "kind": security.KIND,
        "request_id": ctx.request_id,
        "ts": ctx.received_at,
        "client_ip": str(ctx.client_ip) if ctx.client_ip is not None else None,
        "key_id": ctx.key_id,
        "org_id": ctx.security.org_id,
        "reason": ctx.security.reason.value,
        "status": status,
        "route": ctx.route.template if ctx.route else None,
    }
