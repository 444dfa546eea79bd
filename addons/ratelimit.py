"""Request-rate limits per key and per org (and the configured default), before anything is
relayed. Every answer carries the RateLimit headers of the tightest window; a refusal is a 429
`RateLimitExceeded` with Retry-After."""

from __future__ import annotations

import json
import logging

from mitmproxy import ctx, exceptions, http

from addons.respond import context, refuse
from proxy.errors import EdgeError, counters_unavailable
from proxy.limits.limiter import PER_DAY, PER_MINUTE, Decision, windows_for
from proxy.limits.resilient import CountersUnavailable
from proxy.services import EdgeServices

log = logging.getLogger(__name__)
DECISION_KEY = "nextapi_ratelimit"


def parse_limits(text: str, name: str) -> dict[str, int]:
    try:
        limits = json.loads(text or "{}")
    except ValueError:
        raise exceptions.OptionsError(f"{name} must be a JSON object") from None
    if not isinstance(limits, dict) or not all(
        field in (PER_MINUTE, PER_DAY, "concurrent_tasks") and isinstance(v, int) and v > 0
        for field, v in limits.items()
    ):
        raise exceptions.OptionsError(
            f"{name}: fields requests_per_minute, requests_per_day, concurrent_tasks (positive)"
        )
    return limits


def rate_limited(decision: Decision) -> EdgeError:
    assert decision.window is not None
    window = decision.window
    scope = window.counter.split(":", 1)[0]
    per = "minute" if window.kind == PER_MINUTE else "day"
    return EdgeError(
        429,
        "RateLimitExceeded",
        f"Rate limit of the {scope} reached: {window.limit} requests per {per}.",
        headers=decision.headers(),
    )


class RateLimit:
    def __init__(self, services: EdgeServices) -> None:
        self.services = services

    def load(self, loader) -> None:
        loader.add_option(
            "nextapi_default_limits",
            str,
            "{}",
            "JSON: the limits of an org that sets none, e.g. "
            '{"requests_per_minute": 600, "requests_per_day": 100000, "concurrent_tasks": 20}',
        )

    def configure(self, updated: set[str]) -> None:
        if "nextapi_default_limits" in updated:
            self.services.default_limits = parse_limits(
                ctx.options.nextapi_default_limits, "nextapi_default_limits"
            )

    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response:
            return
        rctx = context(flow)
        if rctx.identity is None:  # a public route (callbacks): not a customer's request
            return
        key, org = rctx.identity.key, rctx.identity.org
        windows = windows_for(
            key.key_id, org.org_id, key.rate_limit, org.rate_limit, self.services.default_limits
        )
        try:
            decision = await self.services.limits.check(windows)
        except CountersUnavailable:
            refuse(flow, counters_unavailable())
            return
        flow.metadata[DECISION_KEY] = decision
        if not decision.allowed:
            refuse(flow, rate_limited(decision))

    def response(self, flow: http.HTTPFlow) -> None:
        decision = flow.metadata.get(DECISION_KEY)
        if flow.response is not None and isinstance(decision, Decision) and decision.allowed:
            flow.response.headers.update(decision.headers())
