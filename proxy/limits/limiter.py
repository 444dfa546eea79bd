"""Request-rate limits on the `limits` library: per key, per org, per upstream model, and the
configured default, all at once; the tightest one decides and names the RateLimit headers.

Both windows (per minute, per day) are sliding-window counters: O(1) storage per counter, and
within one clock-aligned window exact (the N+1-th request is refused). Across a window boundary
the previous window's count is weighted by how much of it still overlaps, an approximation that
spares the burst a fixed window would allow at the boundary. (The moving window, exact
everywhere, keeps a timestamp per request: at 1,500 requests/s limits' in-memory moving window
cost a third of the edge's throughput.) Storage is `async+memory://` for one edge,
`async+redis://` when several edges share counters.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerMinute
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

PER_MINUTE = "requests_per_minute"
PER_DAY = "requests_per_day"


@dataclass(frozen=True, slots=True)
class Window:
    counter: str  # who is counted: "key:<id>", "org:<id>", "model:<id>"
    kind: str  # PER_MINUTE | PER_DAY
    limit: int

    def item(self) -> RateLimitItem:
        if self.kind == PER_MINUTE:
            return RateLimitItemPerMinute(self.limit, namespace="nextapi")
        return RateLimitItemPerDay(self.limit, namespace="nextapi")

    @property
    def expiry(self) -> int:
        return 60 if self.kind == PER_MINUTE else 86400


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    window: Window | None  # the tightest window (None: no limit applies)
    remaining: int = 0
    reset_seconds: int = 0  # until the tightest window frees a request

    def headers(self) -> dict[str, str]:
        if self.window is None:
            return {}
        headers = {
            "RateLimit-Limit": str(self.window.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_seconds))
        return headers


class RateLimiter:
    def __init__(self, storage_uri: str = "async+memory://", *, prefix: str = "nextapi") -> None:
        options: dict[str, object] = {}
        if storage_uri.startswith("async+redis"):
            options = {
                "implementation": "redispy",
                "key_prefix": prefix,
                "wrap_exceptions": True,  # every storage failure is a StorageError
                "socket_timeout": 1.0,
                "socket_connect_timeout": 1.0,
            }
        self.storage: Storage = storage_from_string(storage_uri, **options)
        self.strategy = SlidingWindowCounterRateLimiter(self.storage)

    async def check(self, windows: Sequence[Window]) -> Decision:
        """Count one request against every window, or against none if any is full."""
        if not windows:
            return Decision(True, None)
        for window in windows:
            if not await self.strategy.test(window.item(), window.counter):
                return await self._decision(False, [window])
        for window in windows:
            # Another edge may have taken the last request since the test.
            if not await self.strategy.hit(window.item(), window.counter):
                return await self._decision(False, [window])
        return await self._decision(True, windows)

    async def check_then(
        self, first: Sequence[Window], then: Sequence[Window]
    ) -> tuple[Decision, Decision | None]:
        """`check(first)`, then, only if it admitted the request, `check(then)` (None when not
        made or `then` is empty). A create's key and org windows, then its model's cap: a
        request the cap refuses still counts against the key's and org's windows."""
        decision = await self.check(first)
        if not decision.allowed or not then:
            return decision, None
        return decision, await self.check(then)

    async def _decision(self, allowed: bool, windows: Sequence[Window]) -> Decision:
        now = time.time()
        tightest: Decision | None = None
        for window in windows:
            stats = await self.strategy.get_window_stats(window.item(), window.counter)
            reset = max(0, math.ceil(stats.reset_time - now))
            if not allowed:
                reset = max(1, reset)  # "retry now" is never true while still limited
            tightest = tighter(tightest, Decision(allowed, window, stats.remaining, reset))
        assert tightest is not None
        return tightest

    async def blocked(self, windows: Sequence[Window]) -> Decision | None:
        """The first full window, without counting anything; None when all have room."""
        for window in windows:
            if not await self.strategy.test(window.item(), window.counter):
                return await self._decision(False, [window])
        return None

    async def count(self, windows: Sequence[Window]) -> None:
        """Count one event against every window, whether or not it fits (e.g. a failure)."""
        for window in windows:
            await self.strategy.hit(window.item(), window.counter)

    async def clear(self, window: Window) -> None:
        await self.strategy.clear(window.item(), window.counter)


def tighter(best: Decision | None, candidate: Decision) -> Decision:
    """The fewer requests remaining, then the later reset, decides which window's headers show."""
    if best is None or (candidate.remaining, -candidate.reset_seconds) < (
        best.remaining,
        -best.reset_seconds,
    ):
        return candidate
    return best


OWN_SCOPES = ("key", "org")  # the customer's own limits: the rest (a model, the account) are shared


def own_scope(counter: str) -> str | None:
    """`key` or `org` for a counter of the customer's own limits (`key:<id>`, `org:<id>`); None
    for a cap that all customers share, which no single customer can be blamed for filling."""
    scope = counter.split(":", 1)[0]
    return scope if scope in OWN_SCOPES else None


def windows_for(
    key_id: str,
    org_id: str,
    key_limits: dict[str, int],
    org_limits: dict[str, int],
    default_limits: dict[str, int],
) -> list[Window]:
    """The key's own limits, and the org's (or the configured default where the org sets
    none). All apply; the tightest decides."""
    windows = []
    for kind in (PER_MINUTE, PER_DAY):
        if limit := key_limits.get(kind):
            windows.append(Window(f"key:{key_id}", kind, limit))
        if limit := org_limits.get(kind) or default_limits.get(kind):
            windows.append(Window(f"org:{org_id}", kind, limit))
    return windows
