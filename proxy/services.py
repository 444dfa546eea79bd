"""The shared parts the edge's addons use: one instance per edge process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from proxy.authn import KeyAuthenticator
from proxy.concurrency import ConcurrencyStore, MemoryConcurrencyStore, RedisConcurrencyStore
from proxy.limiter import RateLimiter
from proxy.policy import PolicyStore
from proxy.resilient import Breaker, ResilientLimiter, ResilientSlots
from proxy.throttle import AuthThrottle

if TYPE_CHECKING:
    from proxy.spool import Spool


@dataclass
class EdgeServices:
    policy: PolicyStore = field(default_factory=PolicyStore)
    authenticator: KeyAuthenticator | None = None
    limits: RateLimiter = field(default_factory=RateLimiter)
    counters: ConcurrencyStore = field(default_factory=MemoryConcurrencyStore)
    throttle: AuthThrottle | None = None
    default_limits: dict[str, int] = field(default_factory=dict)  # for orgs that set none
    spool: Spool | None = None  # set once the process has started its usage spool
    breaker: Breaker | None = None  # set when counters are shared through Redis

    def __post_init__(self) -> None:
        if self.authenticator is None:
            self.authenticator = KeyAuthenticator(self.policy)
        if self.throttle is None:
            self.throttle = AuthThrottle(self.limits)

    def use_redis(self, url: str, *, prefix: str = "nextapi:", failure: str = "local") -> None:
        """Share rate limits, failed-auth counts and concurrency slots with other edges."""
        self.breaker = Breaker(failure)
        shared = RateLimiter(f"async+{url}", prefix=prefix.rstrip(":"))
        self.limits = ResilientLimiter(shared, RateLimiter(), self.breaker)
        self.counters = ResilientSlots(
            RedisConcurrencyStore(url, prefix=prefix), MemoryConcurrencyStore(), self.breaker
        )
        self.gatekeeper.limiter = self.limits

    @property
    def auth(self) -> KeyAuthenticator:
        assert self.authenticator is not None
        return self.authenticator

    @property
    def gatekeeper(self) -> AuthThrottle:
        assert self.throttle is not None
        return self.throttle
