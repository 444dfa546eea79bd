"""The single-call Redis limiter answers exactly as the memory limiter on the same sequences.

Both run under one fake clock (`time.time` patched: the memory storage of `limits` reads it),
so every decision, remaining count and reset can be compared. Redis is the machine's
(NEXTAPI_TEST_REDIS_URL, default redis://127.0.0.1:6379/0) under a random key prefix, deleted
afterwards; without it these tests fail.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis

from proxy.limits.limiter import PER_DAY, PER_MINUTE, Decision, RateLimiter, Window, windows_for
from proxy.limits.redis_windows import RedisWindowLimiter

REDIS_URL = os.environ.get("NEXTAPI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
START = 1_790_000_000.25  # an arbitrary instant, not on a minute boundary


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(time, "time", fake)
    return fake


@pytest.fixture
def prefix() -> Iterator[str]:
    value = f"nextapi-test-{uuid.uuid4().hex[:12]}:"
    yield value
    client = redis.Redis.from_url(REDIS_URL)
    for name in client.scan_iter(match=f"{value}*"):
        client.delete(name)
    client.close()


def run(body: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(body())


class Pair:
    """The memory limiter and the Redis one, driven together; every answer compared."""

    def __init__(self, prefix: str, clock: Clock) -> None:
        self.memory = RateLimiter()
        self.shared = RedisWindowLimiter(REDIS_URL, prefix=prefix, clock=clock)
        self.answers = 0

    async def check(self, windows: list[Window]) -> Decision:
        expected = await self.memory.check(windows)
        got = await self.shared.check(windows)
        assert got == expected, (windows, got, expected)
        self.answers += 1
        return got

    async def check_then(
        self, first: list[Window], then: list[Window]
    ) -> tuple[Decision, Decision | None]:
        expected = await self.memory.check_then(first, then)
        got = await self.shared.check_then(first, then)
        assert got == expected, (first, then, got, expected)
        self.answers += 1
        return got

    async def blocked(self, windows: list[Window]) -> Decision | None:
        expected = await self.memory.blocked(windows)
        got = await self.shared.blocked(windows)
        assert got == expected, (windows, got, expected)
        return got

    async def count(self, windows: list[Window]) -> None:
        await self.memory.count(windows)
        await self.shared.count(windows)

    async def close(self) -> None:
        await self.shared.close()


def key_org_windows(key: str, org: str, key_rpm: int, org_rpm: int, org_rpd: int) -> list[Window]:
    return windows_for(key, org, {PER_MINUTE: key_rpm}, {PER_MINUTE: org_rpm, PER_DAY: org_rpd}, {})


def test_a_minute_window_admits_exactly_its_limit_then_refuses(prefix: str, clock: Clock) -> None:
    async def body() -> None:
        pair = Pair(prefix, clock)
        windows = [Window("key:k1", PER_MINUTE, 5)]
        allowed = [(await pair.check(windows)).allowed for _ in range(8)]
        assert allowed == [True] * 5 + [False] * 3
        refused = await pair.check(windows)
        assert refused.remaining == 0 and refused.reset_seconds >= 1
        assert refused.headers()["Retry-After"] == str(refused.reset_seconds)
        await pair.close()

    run(body)


def test_key_and_org_windows_across_boundaries_answer_alike(prefix: str, clock: Clock) -> None:
    """Two keys of one org, minute and day windows, through three minute boundaries: the
    previous minute weighted by its overlap, the tightest window named, identical answers."""

    async def body() -> None:
        pair = Pair(prefix, clock)
        rng = random.Random(15)
        a = key_org_windows("k-a", "o-1", 7, 10, 150)
        b = key_org_windows("k-b", "o-1", 9, 10, 150)
        outcomes = {True: 0, False: 0}
        for _ in range(400):
            clock.now += rng.choice([0.0, 0.05, 0.4, 1.7, 3.3])
            decision = await pair.check(a if rng.random() < 0.5 else b)
            outcomes[decision.allowed] += 1
        assert clock.now - START > 180  # the sequence crossed minute boundaries
        assert outcomes[True] > 40 and outcomes[False] > 40  # both answers were exercised
        await pair.close()

    run(body)


def test_a_model_cap_and_the_day_window_refuse_alike(prefix: str, clock: Clock) -> None:
    async def body() -> None:
        pair = Pair(prefix, clock)
        model = [Window("model:seedance-x", PER_MINUTE, 3)]
        day = windows_for("k-d", "o-d", {PER_DAY: 4}, {}, {PER_MINUTE: 100})
        for _ in range(5):
            await pair.check(model)
        for _ in range(6):
            await pair.check(day)
        clock.now += 61  # a new minute: the day window still refuses
        last = await pair.check(day)
        assert not last.allowed and last.window is not None and last.window.kind == PER_DAY
        await pair.close()

    run(body)


def test_creates_with_a_model_cap_answer_alike(prefix: str, clock: Clock) -> None:
    """A create's key and org windows, then its model's cap, in one call (`check_then`), among
    reads that count against the key and org only: through minute boundaries, every answer
    (which group refused, remaining, reset) the memory limiter's."""

    async def body() -> None:
        pair = Pair(prefix, clock)
        rng = random.Random(1515)
        keys = [key_org_windows(f"k-{n}", "o-m", 12 + n, 40, 2000) for n in range(3)]
        caps = {
            "tight": [Window("model:tight", PER_MINUTE, 4)],
            "loose": [Window("model:loose", PER_MINUTE, 9)],
            "none": [],
        }
        seen: dict[str, int] = {"admitted": 0, "key-or-org": 0, "model": 0}
        for _ in range(500):
            clock.now += rng.choice([0.0, 0.05, 0.3, 1.1, 2.9])
            windows = rng.choice(keys)
            if rng.random() < 0.3:  # a read: no model
                await pair.check(windows)
                continue
            first, then = await pair.check_then(windows, caps[rng.choice(list(caps))])
            if not first.allowed:
                assert then is None
                seen["key-or-org"] += 1
            elif then is not None and not then.allowed:
                seen["model"] += 1
            else:
                seen["admitted"] += 1
        assert clock.now - START > 180  # the sequence crossed minute boundaries
        assert min(seen.values()) > 30, seen  # every outcome was exercised
        # A create with no key or org window at all: the cap alone decides, one way or the other.
        for _ in range(6):
            await pair.check_then([], caps["tight"])
        await pair.close()

    run(body)


def test_a_capped_create_is_one_redis_command(prefix: str, clock: Clock) -> None:
    """The key's and org's minute and day windows and the model cap: one EVALSHA, whether the
    create is admitted, refused by the cap, or refused by the key; none while the key's window
    is known full."""

    async def body() -> None:
        pair = Pair(prefix, clock)
        commands: list[str] = []
        send = pair.shared.redis.execute_command

        async def counted(*args: Any, **options: Any) -> Any:
            commands.append(str(args[0]))
            return await send(*args, **options)

        pair.shared.redis.execute_command = counted  # type: ignore[method-assign]
        windows = windows_for(
            "k-one",
            "o-one",
            {PER_MINUTE: 3, PER_DAY: 100},
            {PER_MINUTE: 50, PER_DAY: 1000},
            {},
        )
        assert len(windows) == 4
        cap = [Window("model:one", PER_MINUTE, 2)]
        outcomes = []
        for _ in range(4):
            before = len(commands)
            first, then = await pair.check_then(windows, cap)
            outcomes.append((first.allowed, then.allowed if then else None))
            assert commands[before:] == ["EVALSHA"], commands
        assert outcomes == [(True, True), (True, True), (True, False), (False, None)]
        before = len(commands)
        assert not (await pair.check_then(windows, cap))[0].allowed
        assert commands[before:] == []  # the key's minute window is known full until its reset
        await pair.close()

    run(body)


def test_two_edges_never_admit_more_than_the_model_cap(prefix: str, clock: Clock) -> None:
    async def body() -> None:
        edges = [RedisWindowLimiter(REDIS_URL, prefix=prefix, clock=clock) for _ in range(2)]
        keys = [[Window(f"key:{n}", PER_MINUTE, 30)] for n in range(2)]
        cap = [Window("model:shared", PER_MINUTE, 25)]
        answers = await asyncio.gather(
            *(edges[n % 2].check_then(keys[n % 2], cap) for n in range(100))
        )
        assert sum(first.allowed for first, _ in answers) == 60  # 30 per key
        assert sum(bool(then and then.allowed) for _, then in answers) == 25
        for edge in edges:
            await edge.close()

    run(body)


def test_a_full_window_is_answered_from_memory_until_its_reset(prefix: str, clock: Clock) -> None:
    """Refusals of a window known full cost no Redis call, and end at the same moment as the
    memory limiter's."""

    async def body() -> None:
        pair = Pair(prefix, clock)
        windows = [Window("key:flood", PER_MINUTE, 3)]
        for _ in range(4):
            await pair.check(windows)
        calls = 0
        script = pair.shared._script

        async def counted(**kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            return await script(**kwargs)

        pair.shared._script = counted  # type: ignore[assignment]
        for _ in range(20):
            assert not (await pair.check(windows)).allowed
        assert calls == 0
        while not (await pair.check(windows)).allowed:
            clock.now += 0.5
        assert calls >= 1
        await pair.close()

    run(body)


def test_two_edges_never_admit_more_than_the_limit(prefix: str, clock: Clock) -> None:
    async def body() -> None:
        edges = [RedisWindowLimiter(REDIS_URL, prefix=prefix, clock=clock) for _ in range(2)]
        windows = [Window("org:shared", PER_MINUTE, 25)]
        answers = await asyncio.gather(*(edges[n % 2].check(windows) for n in range(100)))
        assert sum(a.allowed for a in answers) == 25
        for edge in edges:
            await edge.close()

    run(body)


def test_throttle_test_and_count_answer_alike(prefix: str, clock: Clock) -> None:
    """`blocked` counts nothing; `count` counts each window that has room (failed-auth)."""

    async def body() -> None:
        pair = Pair(prefix, clock)
        windows = [
            Window("authfail-ip:10.0.0.1", PER_MINUTE, 3),
            Window("authfail-key:x", PER_MINUTE, 5),
        ]
        for _ in range(7):
            await pair.blocked(windows)
            await pair.count(windows)
        final = await pair.blocked(windows)
        assert final is not None and final.window == windows[0]
        clock.now += 45
        await pair.blocked(windows)
        await pair.close()

    run(body)


def test_clear_empties_a_window(prefix: str, clock: Clock) -> None:
    async def body() -> None:
        pair = Pair(prefix, clock)
        windows = [Window("key:c", PER_MINUTE, 2)]
        for _ in range(3):
            await pair.check(windows)
        await pair.memory.clear(windows[0])
        await pair.shared.clear(windows[0])
        assert (await pair.check(windows)).allowed
        await pair.close()

    run(body)
