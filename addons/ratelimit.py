"""Request-rate limits per key and per org (and the configured default), before anything is
relayed. Every answer carries the RateLimit headers of the tightest window; a refusal is a 429
`RateLimitExceeded` with Retry-After.

A create, when per-model caps are configured, may have one more window: its model's, known only
once the body is validated. So that all of its windows cost one Redis round trip, its key and org
windows are left pending here and checked together with the model's cap by Quota
(`settle_pending`). The counts and answers are those of a check at the headers: every addon
between here and Quota that answers the create, or is about to do something a refused request
must not cause (Idempotency's claim), settles the pending windows first, and a refusal replaces
its answer, as the 429 would have come first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mitmproxy import http

from addons.respond import context, refuse
from proxy.errors import EdgeError, counters_unavailable
from proxy.limits.limiter import (
    PER_MINUTE,
    Decision,
    Window,
    own_scope,
    windows_for,
)
from proxy.limits.resilient import CountersUnavailable
from proxy.options import declare
from proxy.services import EdgeServices

log = logging.getLogger(__name__)
DECISION_KEY = "nextapi_ratelimit"
PENDING_KEY = "nextapi_ratelimit_pending"  # a create's key and org windows, not yet checked


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


def refuse_limited(flow: http.HTTPFlow, decision: Decision) -> None:
    """Answers 429 for the window that refused, noting whether it was the customer's own."""
    assert decision.window is not None
    context(flow).limited_by = own_scope(decision.window.counter)
    refuse(flow, rate_limited(decision))


class RateLimit:
    def __init__(self, services: EdgeServices) -> None:
        self.services = services

    def load(self, loader) -> None:
        declare(
            loader,
            "nextapi_default_limits",
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
        if rctx.route is not None and rctx.route.name == "tasks.create" and self._capped():
            flow.metadata[PENDING_KEY] = windows
            return
        try:
            decision = await self.services.limits.check(windows)
        except CountersUnavailable:
            refuse(flow, counters_unavailable())
            return
        flow.metadata[DECISION_KEY] = decision
        if not decision.allowed:
            refuse_limited(flow, decision)

    def _capped(self) -> bool:
        # Set by Quota's options: without Quota in the chain nothing is left pending.
        return any(PER_MINUTE in caps for caps in self.services.model_limits.values())

    def response(self, flow: http.HTTPFlow) -> None:
        decision = flow.metadata.get(DECISION_KEY)
        if flow.response is not None and isinstance(decision, Decision) and decision.allowed:
            flow.response.headers.update(decision.headers())


async def settle_pending(
    flow: http.HTTPFlow, services: EdgeServices, then: Sequence[Window] = ()
) -> Decision | None:
    """Check and count the create's pending key and org windows and, only if they admit it,
    `then` (its model's cap), in one call. If they refuse, or the counters are unavailable, the
    flow is answered so, whatever an addon had answered. Returns the decision on `then` (None:
    not made). Without pending windows (checked at the headers), `then` alone is checked."""
    pending: list[Window] | None = flow.metadata.pop(PENDING_KEY, None)
    if pending is None and not then:
        return None
    try:
        decision, then_decision = await services.limits.check_then(pending or (), then)
    except CountersUnavailable:
        refuse(flow, counters_unavailable())
        return None
    if pending is not None:
        flow.metadata[DECISION_KEY] = decision
        if not decision.allowed:
            refuse_limited(flow, decision)
    return then_decision
