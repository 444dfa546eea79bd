"""The shared parts the edge's addons use: one instance per edge process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from proxy.authn import KeyAuthenticator
from proxy.limiter import RateLimiter
from proxy.policy import PolicyStore
from proxy.throttle import AuthThrottle

if TYPE_CHECKING:
    from proxy.concurrency import ConcurrencyStore
    from proxy.spool import Spool


@dataclass
class EdgeServices:
    policy: PolicyStore = field(default_factory=PolicyStore)
    authenticator: KeyAuthenticator | None = None
    limits: RateLimiter = field(default_factory=RateLimiter)
    throttle: AuthThrottle | None = None
    slots: ConcurrencyStore | None = None  # set when the process starts (memory or Redis)
    spool: Spool | None = None  # set once the process has started its usage spool

    def __post_init__(self) -> None:
        if self.authenticator is None:
            self.authenticator = KeyAuthenticator(self.policy)
        if self.throttle is None:
            self.throttle = AuthThrottle(self.limits)

    @property
    def auth(self) -> KeyAuthenticator:
        assert self.authenticator is not None
        return self.authenticator

    @property
    def gatekeeper(self) -> AuthThrottle:
        assert self.throttle is not None
        return self.throttle
