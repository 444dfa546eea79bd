"""Throttling failed admin authentications per client address (the dashboard's login form, the
admin API's bearer tokens): each costs an Argon2id run per active token otherwise."""

from __future__ import annotations

import time
from collections import deque

MAX_ADDRESSES = 100_000  # addresses remembered at once: a spread-out flood cannot grow it past


class FailureThrottle:
    """Failures per client address within a sliding window (in memory: a restart forgets, which
    costs an attacker nothing worth having against a 256-bit token)."""

    def __init__(self, failures: int, window: float) -> None:
        self.failures = failures
        self.window = window
        self._seen: dict[str, deque[float]] = {}

    def _recent(self, address: str) -> deque[float]:
        seen = self._seen.setdefault(address, deque())
        cutoff = time.monotonic() - self.window
        while seen and seen[0] < cutoff:
            seen.popleft()
        if not seen:
            del self._seen[address]
            return deque()
        return seen

    def blocked(self, address: str) -> bool:
        return len(self._recent(address)) >= self.failures

    def failed(self, address: str) -> None:
        seen = self._seen.get(address)
        if seen is None:
            if len(self._seen) >= MAX_ADDRESSES:
                del self._seen[next(iter(self._seen))]  # the longest remembered
            seen = self._seen[address] = deque()
        seen.append(time.monotonic())
        while len(seen) > self.failures:  # the newest `failures` decide whether it is blocked
            seen.popleft()
