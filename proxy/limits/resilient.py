"""Shared counters (Redis) with a documented behaviour when Redis is unreachable.

`failure="local"` (the default) keeps the edge serving on its own in-memory counters: limits then
count per edge instead of across edges, until Redis answers again. `failure="closed"` refuses
requests (503) instead. Either way a failing Redis is not asked again for `cooldown` seconds, so
requests do not each wait for a connection timeout, and the edge returns to the shared counters
by itself once Redis is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import redis.exceptions
from limits.errors import StorageError

from proxy.limits.concurrency import ConcurrencyStore, Refusal, SlotLimit
from proxy.limits.limiter import Decision, RateLimiter, Window

log = logging.getLogger(__name__)
T = TypeVar("T")
_FAILURES = (StorageError, redis.exceptions.RedisError, OSError, TimeoutError)


class CountersUnavailable(Exception):
    """Redis is unreachable and the edge is configured to fail closed."""


class Breaker:
    def __init__(self, failure: str, cooldown: float = 2.0) -> None:
        if failure not in ("local", "closed"):
            raise ValueError("failure must be local or closed")
        self.failure = failure
        self.cooldown = cooldown
        self._open_until = 0.0
        self.failures = 0  # for metrics and tests

    @property
    def healthy(self) -> bool:
        """Redis answered the last call (or has not failed within the cooldown)."""
        return time.monotonic() >= self._open_until

    async def call(
        self, shared: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]
    ) -> T:
        if time.monotonic() >= self._open_until:
            try:
                result = await shared()
            except _FAILURES as exc:
                self.failures += 1
                self._open_until = time.monotonic() + self.cooldown
                log.warning(
                    "shared counters unreachable (%s): %s for %.0f s",
                    type(exc).__name__,
                    "using this edge's own" if self.failure == "local" else "refusing",
                    self.cooldown,
                )
            else:
                return result
        if self.failure == "closed":
            raise CountersUnavailable
        return await local()


class ResilientLimiter(RateLimiter):
    """A RateLimiter on Redis that falls back to (or refuses without) local counters."""

    def __init__(self, shared: RateLimiter, local: RateLimiter, breaker: Breaker) -> None:
        self.shared, self.local, self.breaker = shared, local, breaker

    async def check(self, windows: Sequence[Window]) -> Decision:
        return await self.breaker.call(
            lambda: self.shared.check(windows), lambda: self.local.check(windows)
        )

    async def check_then(
        self, first: Sequence[Window], then: Sequence[Window]
    ) -> tuple[Decision, Decision | None]:
        return await self.breaker.call(
            lambda: self.shared.check_then(first, then),
            lambda: self.local.check_then(first, then),
        )

    async def blocked(self, windows: Sequence[Window]) -> Decision | None:
        return await self.breaker.call(
            lambda: self.shared.blocked(windows), lambda: self.local.blocked(windows)
        )

    async def count(self, windows: Sequence[Window]) -> None:
        await self.breaker.call(
            lambda: self.shared.count(windows), lambda: self.local.count(windows)
        )

    async def clear(self, window: Window) -> None:
        await self.breaker.call(lambda: self.shared.clear(window), lambda: self.local.clear(window))


class ResilientSlots:
    """A ConcurrencyStore on Redis with the same fallback. Slots taken locally while Redis was
    away are released locally; slots taken in Redis free themselves by their ttl if Redis
    cannot be reached for the release."""

    def __init__(self, shared: ConcurrencyStore, local: ConcurrencyStore, breaker: Breaker) -> None:
        self.shared, self.local, self.breaker = shared, local, breaker

    async def acquire(
        self, token: str, limits: Sequence[SlotLimit], *, ttl: float
    ) -> Refusal | None:
        return await self.breaker.call(
            lambda: self.shared.acquire(token, limits, ttl=ttl),
            lambda: self.local.acquire(token, limits, ttl=ttl),
        )

    async def bind(self, token: str, task_id: str, *, ttl: float) -> None:
        await self.local.bind(token, task_id, ttl=ttl)
        await self._shared_quietly(lambda: self.shared.bind(token, task_id, ttl=ttl))

    async def release(self, token: str) -> bool:
        local = await self.local.release(token)
        return bool(await self._shared_quietly(lambda: self.shared.release(token))) or local

    async def release_task(self, task_id: str) -> bool:
        local = await self.local.release_task(task_id)
        shared = await self._shared_quietly(lambda: self.shared.release_task(task_id))
        return bool(shared) or local

    async def open_tasks(self, limit: int = 1000) -> list[str]:
        local = await self.local.open_tasks(limit)
        shared = await self._shared_quietly(lambda: self.shared.open_tasks(limit)) or []
        return list(dict.fromkeys([*shared, *local]))[:limit]

    async def in_use(self, counter: str) -> int:
        return await self.breaker.call(
            lambda: self.shared.in_use(counter), lambda: self.local.in_use(counter)
        )

    async def close(self) -> None:
        await self.local.close()
        await self.shared.close()

    async def _shared_quietly(self, call: Callable[[], Awaitable[T]]) -> T | None:
        # A release or bind must never fail a request: a lost one is healed by the ttl.
        try:
            return await call()
        except _FAILURES as exc:
            log.warning("shared counters: %s on release/bind", type(exc).__name__)
            return None
