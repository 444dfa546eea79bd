"""Failed-authentication throttling, consulted before any Argon2id work.

A client address with too many failed authentications in the last minute, or a key id with too
many wrong secrets, gets 429 at once instead of a verification: a flood of bad keys cannot
exhaust the CPU. Keys already verified (cached) never reach this gate, so a customer behind the
same address as an attacker keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.auth.netaddr import IPAddress
from proxy.limits.limiter import PER_MINUTE, Decision, RateLimiter, Window


@dataclass(frozen=True, slots=True)
class ThrottleLimits:
    failures_per_ip: int = 30  # per minute, any kind of failed authentication
    wrong_secrets_per_key: int = 10  # per minute, for a known key id


class AuthThrottle:
    def __init__(self, limiter: RateLimiter, limits: ThrottleLimits | None = None) -> None:
        self.limiter = limiter
        self.limits = limits or ThrottleLimits()

    def _windows(self, address: IPAddress | None, key_id: str | None) -> list[Window]:
        windows = []
        if address is not None:
            windows.append(
                Window(f"authfail-ip:{address}", PER_MINUTE, self.limits.failures_per_ip)
            )
        if key_id is not None:
            windows.append(
                Window(f"authfail-key:{key_id}", PER_MINUTE, self.limits.wrong_secrets_per_key)
            )
        return windows

    async def blocked(self, address: IPAddress | None, key_id: str | None) -> Decision | None:
        return await self.limiter.blocked(self._windows(address, key_id))

    async def failed(self, address: IPAddress | None, key_id: str | None) -> None:
        """Count a failure: against the address always, against the key id for a wrong secret."""
        await self.limiter.count(self._windows(address, key_id))
