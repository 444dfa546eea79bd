"""Customer authentication with `Authorization: Bearer nk_…` keys, and failed-auth throttling.

Runs at request headers, so a refused request's body is never parsed and nothing is relayed.
A client address (or key id) with too many recent failures gets 429 instead of another
Argon2id verification. Every refusal marks the request for a security event (metering writes it).
A key the edge cannot check (no current policy: proxy/auth/authenticator.py) gets 503 with
Retry-After: neither a failed authentication nor a security event, the customer did nothing wrong.
"""

from __future__ import annotations

from mitmproxy import http

from addons.respond import context, refuse
from proxy.auth.authenticator import AuthFailure, Unchecked
from proxy.auth.security_marks import SecurityMark, ThrottledSample, reason_for
from proxy.auth.throttle import AuthThrottle
from proxy.context import RequestContext
from proxy.core.security_events import Reason
from proxy.errors import EdgeError, authentication_error, counters_unavailable
from proxy.limits.limiter import Decision
from proxy.limits.resilient import CountersUnavailable
from proxy.options import declare
from proxy.services import EdgeServices


def throttled(decision: Decision | None) -> EdgeError:
    headers = decision.headers() if decision is not None else {"Retry-After": "60"}
    return EdgeError(429, "RateLimitExceeded", AuthFailure.THROTTLED.value, headers=headers)


def unchecked(reason: Unchecked) -> EdgeError:
    # The SDKs retry a 503; Retry-After paces them to about the edge's own retry of its poll.
    return EdgeError(503, "ServiceUnavailable", reason.value, headers={"Retry-After": "5"})


class Auth:
    def __init__(self, services: EdgeServices) -> None:
        self.services = services
        self.throttled_sample = ThrottledSample()

    def load(self, loader) -> None:
        declare(
            loader,
            "nextapi_auth_failures_per_ip",
            "nextapi_wrong_secrets_per_key",
            "nextapi_wrong_secrets_per_key_ceiling",
        )

    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response:
            return
        rctx = context(flow)
        if rctx.route is not None and rctx.route.public:
            return
        try:
            await self._authenticate(flow, rctx, self.services.gatekeeper)
        except CountersUnavailable:
            refuse(flow, counters_unavailable())

    async def _authenticate(
        self, flow: http.HTTPFlow, rctx: RequestContext, throttle: AuthThrottle
    ) -> None:
        blocked: Decision | None = None

        async def gate() -> bool:
            nonlocal blocked
            blocked = await throttle.blocked(rctx.client_ip, rctx.key_id)
            return blocked is None

        result = await self.services.auth.authenticate(
            flow.request.headers.get("authorization"), gate
        )
        if isinstance(result, Unchecked):
            refuse(flow, unchecked(result))
            return
        if result is AuthFailure.THROTTLED:
            self._mark(rctx, Reason.THROTTLED)
            refuse(flow, throttled(blocked))
            return
        if isinstance(result, AuthFailure):
            # Cheap failures (no verification ran) are answered 429 too once the address is
            # throttled, and every failure counts; a wrong secret counts against its key id.
            key_known = rctx.key_id in self.services.policy.snapshot.keys
            wrong_secret = result is AuthFailure.UNKNOWN and key_known
            key_id = rctx.key_id if wrong_secret else None
            blocked = await throttle.blocked(rctx.client_ip, key_id)
            if blocked is not None:
                self._mark(rctx, Reason.THROTTLED)
                refuse(flow, throttled(blocked))
                return
            await throttle.failed(rctx.client_ip, key_id)
            self._mark(rctx, reason_for(result, key_known=key_known))
            refuse(flow, authentication_error(result.value))
            return
        rctx.identity = result

    def _mark(self, rctx: RequestContext, reason: Reason) -> None:
        if reason is Reason.THROTTLED and not self.throttled_sample.take(rctx.client_ip):
            return
        rctx.security = SecurityMark.for_key(reason, rctx.key_id, self.services.policy.snapshot)
