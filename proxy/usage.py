"""Usage records: exactly the usage data the privacy policy names (timestamps, endpoint, response
code, latency, credit consumption) plus ids. No prompt, no image data, no client address."""

from __future__ import annotations

import time
from typing import Any

from proxy.context import RequestContext

FIELDS = (
    "request_id",
    "ts",
    "org_id",
    "key_id",
    "method",
    "route",
    "status",
    "latency_ms",
    "upstream_latency_ms",
    "bytes_in",
    "bytes_out",
    "credits",
    "model",
    "task_id",
)


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
    }
