"""Failed-authentication throttling, consulted before any Argon2id work.

A flood of bad keys must not exhaust the CPU, and nobody but the key's owner may be able to lock
a key out. So the windows are the guesser's own:
- a client address with too many failed authentications in the last minute (any kind) gets 429
  at once instead of a verification;
- so does an address with too many wrong secrets for one key id (the key id is printed in every
  key and survives rotation: a window per key id alone would let anyone who knows it refuse the
  owner everywhere);
- once a key id has had more wrong secrets than its ceiling from all addresses together (a spread
  guesser), every address that has already guessed wrong for it gets 429 from its next guess
  on: the guessers are slowed to one guess a minute each, and an address that has not failed
  for it (the owner's, wherever it is) is still verified.
Keys already verified (cached) never reach this gate, so a customer behind the same address as an
attacker keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.core.netaddr import IPAddress
from proxy.limits.limiter import PER_MINUTE, Decision, RateLimiter, Window


@dataclass(frozen=True, slots=True)
class ThrottleLimits:
    failures_per_ip: int = 30  # per minute, any kind of failed authentication
    wrong_secrets_per_key: int = 10  # per minute, for one key id from one address
    wrong_secrets_per_key_ceiling: int = 100  # per minute, for one key id from all addresses


class AuthThrottle:
    def __init__(self, limiter: RateLimiter, limits: ThrottleLimits | None = None) -> None:
        self.limiter = limiter
        self.limits = limits or ThrottleLimits()

    def _address(self, address: IPAddress) -> Window:
        return Window(f"authfail-ip:{address}", PER_MINUTE, self.limits.failures_per_ip)

    def _guesser(self, address: IPAddress | None, key_id: str) -> Window:
        limit = self.limits.wrong_secrets_per_key
        return Window(f"authfail-ipkey:{address}:{key_id}", PER_MINUTE, limit)

    def _guessed(self, address: IPAddress | None, key_id: str) -> Window:
        # Full after one wrong secret (a counter of its own: a window's counter is kept per limit).
        return Window(f"authfail-guessed:{address}:{key_id}", PER_MINUTE, 1)

    def _key(self, key_id: str) -> Window:
        return Window(
            f"authfail-key:{key_id}", PER_MINUTE, self.limits.wrong_secrets_per_key_ceiling
        )

    async def blocked(self, address: IPAddress | None, key_id: str | None) -> Decision | None:
        """The window that refuses this address a verification now (for `key_id` if given),
        or None."""
        windows = [self._address(address)] if address is not None else []
        if key_id is not None:
            windows.append(self._guesser(address, key_id))
        if decision := await self.limiter.blocked(windows):
            return decision
        if key_id is None or await self.limiter.blocked([self._key(key_id)]) is None:
            return None
        # A key under a spread attack: an address that guessed wrong for it once waits.
        return await self.limiter.blocked([self._guessed(address, key_id)])

    async def failed(self, address: IPAddress | None, key_id: str | None) -> None:
        """Count a failure: against the address always; for a wrong secret, against the
        address's guesses for that key id and the key id's ceiling."""
        windows = [self._address(address)] if address is not None else []
        if key_id is not None:
            windows += [
                self._guesser(address, key_id),
                self._guessed(address, key_id),
                self._key(key_id),
            ]
        await self.limiter.count(windows)
