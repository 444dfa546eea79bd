"""Concurrency slots: the same behaviour from the in-process store and the Redis store.

The Redis cases use the server at NEXTAPI_TEST_REDIS_URL (default redis://127.0.0.1:6379/0) under
a random key prefix, and delete every key with that prefix afterwards. The machine runs one;
without it these cases fail (a skipped test would count as passing).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis
import redis.asyncio

from proxy.limits.concurrency import (
    ConcurrencyStore,
    MemoryConcurrencyStore,
    RedisConcurrencyStore,
    Refusal,
    SlotLimit,
    open_store,
)

REDIS_URL = os.environ.get("NEXTAPI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
HOUR = 3600.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Harness:
    """Makes stores of one kind that share state (one Redis prefix, or one memory store)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.prefix = f"nextapi-test-{uuid.uuid4().hex[:12]}:"
        self.clock = FakeClock()
        self._memory = MemoryConcurrencyStore(clock=self.clock)
        self._stores: list[ConcurrencyStore] = []

    def store(self) -> ConcurrencyStore:
        """Another handle on the shared state: for Redis a new instance with its own pool."""
        if self.kind == "memory":
            return self._memory
        made = RedisConcurrencyStore(REDIS_URL, prefix=self.prefix)
        self._stores.append(made)
        return made

    async def keys(self, pattern: str = "*") -> list[str]:
        client = redis.asyncio.from_url(REDIS_URL, decode_responses=True)
        try:
            return [k async for k in client.scan_iter(match=self.prefix + pattern, count=500)]
        finally:
            await client.aclose()

    async def cleanup(self) -> None:
        for made in self._stores:
            await made.close()
        if self.kind == "redis":
            client = redis.asyncio.from_url(REDIS_URL)
            try:
                found = [k async for k in client.scan_iter(match=self.prefix + "*", count=500)]
                if found:
                    await client.delete(*found)
            finally:
                await client.aclose()

    async def wait_for(
        self, check: Callable[[], Awaitable[bool]], *, timeout: float = 3.0, interval: float = 0.02
    ) -> None:
        """Poll `check` until it holds (Redis expiry runs on the server's clock)."""
        deadline = time.monotonic() + timeout
        while not await check():
            assert time.monotonic() < deadline, "condition not reached before the deadline"
            await asyncio.sleep(interval)


type Body = Callable[[Harness, ConcurrencyStore], Awaitable[None]]


@pytest.fixture(
    params=[
        "memory",
        "redis",
    ]
)
def run(request: pytest.FixtureRequest) -> Callable[[Body], None]:
    def runner(body: Body) -> None:
        harness = Harness(request.param)

        async def main() -> None:
            try:
                await asyncio.wait_for(body(harness, harness.store()), timeout=8)
            finally:
                await harness.cleanup()

        asyncio.run(main())

    return runner


def levels(key: int = 5, org: int = 10, model: int = 20, upstream: int = 120) -> list[SlotLimit]:
    return [
        SlotLimit("key:K1", key),
        SlotLimit("org:org_1", org),
        SlotLimit("model:seedance-1-0-pro", model),
        SlotLimit("upstream", upstream),
    ]


async def counts(store: ConcurrencyStore, limits: list[SlotLimit]) -> list[int]:
    return [await store.in_use(item.counter) for item in limits]


def test_acquire_up_to_limit_then_refuse(run: Callable[[Body], None]) -> None:
    async def body(h: Harness, store: ConcurrencyStore) -> None:
        limits = [SlotLimit("key:K1", 3)]
        for i in range(3):
            assert await store.acquire(f"req-{i}", limits, ttl=30) is None
        assert await store.acquire("req-3", limits, ttl=30) == Refusal("key:K1", 3, 3)
        assert await store.in_use("key:K1") == 3
        assert await store.release("req-0") is True
        assert await store.acquire("req-3", limits, ttl=30) is None
        assert await store.in_use("key:K1") == 3
        assert await store.in_use("never-used") == 0

    run(body)


def test_tightest_level_refuses_and_nothing_is_taken(run: Callable[[Body], None]) -> None:
    async def body(h: Harness, store: ConcurrencyStore) -> None:
        limits = levels(key=5, org=2)
        assert await store.acquire("a", limits, ttl=30) is None
        assert await store.acquire("b", limits, ttl=30) is None
        assert await store.acquire("c", limits, ttl=30) == Refusal("org:org_1", 2, 2)
        assert await counts(store, limits) == [2, 2, 2, 2]
        # the first level in the given order that has no room is the one reported
        full = [SlotLimit("upstream", 2), SlotLimit("org:org_1", 2)]
        assert await store.acquire("d", full, ttl=30) == Refusal("upstream", 2, 2)
        assert await store.acquire("e", [SlotLimit("x", 0)], ttl=30) == Refusal("x", 0, 0)
        assert await counts(store, limits) == [2, 2, 2, 2]
        assert await store.in_use("x") == 0
        assert await store.release("c") is False  # refused: holds nothing

    run(body)


def test_same_token_twice_is_a_noop(run: Callable[[Body], None]) -> None:
    async def body(h: Harness, store: ConcurrencyStore) -> None:
        limits = levels(key=1)
        assert await store.acquire("req", limits, ttl=30) is None
        assert await store.acquire("req", limits, ttl=30) is None
        assert await counts(store, limits) == [1, 1, 1, 1]
        await store.bind("req", "task-1", ttl=HOUR)
        assert await store.acquire("req", limits, ttl=30) is None  # a retry after bind
        assert await counts(store, limits) == [1, 1, 1, 1]
        assert await store.release("req") is False  # the slots belong to the task now
        assert await counts(store, limits) == [1, 1, 1, 1]
        # a counter repeated in the limits counts once, with its tightest limit
        twice = [SlotLimit("dup", 5), SlotLimit("dup", 1)]
        assert await store.acquire("d1", twice, ttl=30) is None
        assert await store.acquire("d2", twice, ttl=30) == Refusal("dup", 1, 1)

    run(body)


def test_bind_then_release_task_frees_every_level(run: Callable[[Body], None]) -> None:
    async def body(h: Harness, store: ConcurrencyStore) -> None:
        limits = levels()
        assert await store.acquire("req-1", limits, ttl=30) is None
        assert await store.acquire("req-2", limits, ttl=30) is None
        await store.bind("req-1", "cgt-1", ttl=HOUR)
        assert await counts(store, limits) == [2, 2, 2, 2]
        assert await store.open_tasks() == ["cgt-1"]
        assert await store.release_task("cgt-1") is True
        assert await counts(store, limits) == [1, 1, 1, 1]
        assert await store.release("req-2") is True
        assert await counts(store, limits) == [0, 0, 0, 0]
        assert await store.open_tasks() == []
        if h.kind == "redis":  # nothing left behind but the short-lived bind tombstone
            assert await h.keys() == [h.prefix + "tok:req-1"]

    run(body)


def test_release_task_is_idempotent(run: Callable[[Body], None]) -> None:
    async def body(h: Harness, store: ConcurrencyStore) -> None:
        limits = levels()
        assert await store.acquire("req", limits, ttl=30) is None
        await store.bind("req", "cgt-9", ttl=HOUR)
        assert await store.release_task("cgt-9") is True
        assert await store.release_task("cgt-9") is False
        assert await store.release("req") is False
        assert await counts(store, limits) == [0, 0, 0, 0]
        # the end seen by GET, callback and reconciler at once: exactly one frees the slots
        assert await store.acquire("req-2", limits, ttl=30) is None
        await store.bind("req-2", "cgt-10", ttl=HOUR)
        others = [h.store() for _ in range(2)]
        freed = await asyncio.gather(
            *(s.release_task("cgt-10") for s in [store, *others, store, *others])
        )
        assert sorted(freed) == [False] * 5 + [True]
        assert await counts(store, limits) == [0, 0, 0, 0]
        assert await store.acquire("req-3", [SlotLimit("key:K1", 1)], ttl=30) is None

    run(body)


def test_unknown_token_and_task_are_harmless(run: Callable[[Body], None]) -> None:
    async def body(h: Harness, store: ConcurrencyStore) -> None:
        assert await store.release("nope") is False
        assert await store.release_task("nope") is False
        await store.bind("nope", "cgt-x", ttl=HOUR)  # no slots held: nothing to hand over
        assert await store.open_tasks() == []
        assert await store.release("req") is False
        assert await store.acquire("req", [SlotLimit("k", 1)], ttl=30) is None
        assert await store.release("req") is True
        assert await store.release("req") is False
        assert await store.in_use("k") == 0

    run(body)


def test_unbound_token_expires(run: Callable[[Body], None]) -> None:
    async def body(h: Harness, store: ConcurrencyStore) -> None:
        limits = levels(key=1)
        ttl = 5.0 if h.kind == "memory" else 0.3
        assert await store.acquire("dead", limits, ttl=ttl) is None
        assert await store.acquire("kept", [SlotLimit("other", 1)], ttl=HOUR) is None
        assert await store.acquire("blocked", limits, ttl=ttl) == Refusal("key:K1", 1, 1)
        if h.kind == "memory":
            h.clock.now += 4.9
            assert await store.in_use("key:K1") == 1
            h.clock.now += 0.2
        else:

            async def freed() -> bool:
                return await store.in_use("key:K1") == 0

            # polled tightly, so what follows runs right at the expiry instant: the token record
            # must count as expired exactly when its slots do (same server clock, same rule)
            await h.wait_for(freed, interval=0)
        assert await counts(store, limits) == [0, 0, 0, 0]
        assert await store.in_use("other") == 1
        await store.bind("dead", "cgt-late", ttl=HOUR)  # too late: no-op
        assert await store.open_tasks() == []
        assert await store.release("dead") is False
        assert await store.acquire("next", limits, ttl=HOUR) is None
        assert await counts(store, limits) == [1, 1, 1, 1]

    run(body)


def test_bound_task_outlives_short_ttl_and_long_ttl_is_a_safety_net(
    run: Callable[[Body], None],
) -> None:
    async def body(h: Harness, store: ConcurrencyStore) -> None:
        limits = [SlotLimit("upstream", 2)]
        short, long = (5.0, 50.0) if h.kind == "memory" else (0.2, 1.0)
        assert await store.acquire("req", limits, ttl=short) is None
        await store.bind("req", "cgt-1", ttl=long)
        if h.kind == "memory":
            h.clock.now += short + 1
        else:
            await asyncio.sleep(short + 0.1)  # past the short ttl, well before the long one
        assert await store.in_use("upstream") == 1
        assert await store.open_tasks() == ["cgt-1"]
        if h.kind == "memory":
            h.clock.now += long
        else:

            async def freed() -> bool:
                return await store.open_tasks() == []

            await h.wait_for(freed)
        assert await store.in_use("upstream") == 0
        assert await store.open_tasks() == []
        assert await store.release_task("cgt-1") is False

    run(body)


def test_open_tasks_lists_bound_tasks(run: Callable[[Body], None]) -> None:
    async def body(h: Harness, store: ConcurrencyStore) -> None:
        limits = levels(upstream=120)
        for i in range(5):
            assert await store.acquire(f"req-{i}", limits[3:], ttl=30) is None
        for i in range(4):
            await store.bind(f"req-{i}", f"cgt-{i}", ttl=HOUR + i)
        assert sorted(await store.open_tasks()) == [f"cgt-{i}" for i in range(4)]
        assert len(await store.open_tasks(limit=2)) == 2
        assert await store.open_tasks(limit=0) == []
        assert await store.release_task("cgt-2") is True
        assert sorted(await store.open_tasks()) == ["cgt-0", "cgt-1", "cgt-3"]
        assert await store.in_use("upstream") == 4

    run(body)


async def race(stores: list[ConcurrencyStore], n: int, limits: list[SlotLimit]) -> list[Any]:
    calls = [stores[i % len(stores)].acquire(f"req-{i}", limits, ttl=30) for i in range(n)]
    return await asyncio.gather(*calls)


def test_concurrent_acquires_never_exceed_the_limit(run: Callable[[Body], None]) -> None:
    async def body(h: Harness, store: ConcurrencyStore) -> None:
        limits = [SlotLimit("org:org_1", 50), SlotLimit("upstream", 10)]
        results = await race([store], 200, limits)
        assert results.count(None) == 10
        refusals = [r for r in results if r is not None]
        assert len(refusals) == 190
        assert all(r.counter == "upstream" and r.in_use == 10 for r in refusals)
        assert await counts(store, limits) == [10, 10]

    run(body)


def test_two_redis_edges_race_on_one_limit() -> None:
    harness = Harness("redis")

    async def main() -> None:
        try:
            edges = [harness.store(), harness.store()]
            limits = [SlotLimit("model:m", 100), SlotLimit("upstream", 10)]
            results = await race(edges, 200, limits)
            assert results.count(None) == 10
            assert all(isinstance(r, Refusal) and r.counter == "upstream" for r in results if r)
            assert [await e.in_use("upstream") for e in edges] == [10, 10]
            winners = [i for i, r in enumerate(results) if r is None]
            # each edge binds / releases the creates it accepted; the other edge sees the result
            for i in winners:
                edge, other = edges[i % 2], edges[(i + 1) % 2]
                await edge.bind(f"req-{i}", f"cgt-{i}", ttl=HOUR)
                assert await other.release_task(f"cgt-{i}") is True
                assert await edge.release_task(f"cgt-{i}") is False
            assert await edges[0].in_use("upstream") == 0
            assert await edges[1].in_use("model:m") == 0
        finally:
            await harness.cleanup()

    asyncio.run(main())


def test_the_memory_store_forgets_the_tokens_of_past_creates() -> None:
    # A token is looked up again only by its own create: the tombstones binds leave, and the
    # tokens of creates that never answered, must not pile up for the life of the process.
    clock = FakeClock()
    store = MemoryConcurrencyStore(clock=clock)
    limits = [SlotLimit("org:org_1", 10**6)]
    creates, every, ttl = 10_000, 0.1, 300.0  # at most 3,000 creates within one ttl

    async def main() -> tuple[int, int, Refusal | None, int]:
        for i in range(creates):
            assert await store.acquire(f"req-{i}", limits, ttl=ttl) is None
            if i % 10:  # one in ten never answers
                await store.bind(f"req-{i}", f"cgt-{i}", ttl=HOUR)
                await store.release_task(f"cgt-{i}")
            clock.now += every
        in_use = await store.in_use("org:org_1")
        # The live ones keep their meaning: a repeated acquire of a recent bound token is a no-op.
        again = await store.acquire(f"req-{creates - 1}", limits, ttl=ttl)
        return len(store._state.tokens), in_use, again, await store.in_use("org:org_1")

    held, in_use, again, after = asyncio.run(main())
    live = int(ttl / every)
    assert held <= 2 * live + 1, f"{held} tokens kept for {live} live ones"
    assert in_use == live // 10  # the unanswered creates within their ttl still hold a slot
    assert again is None and after == in_use


def test_open_store() -> None:
    async def main() -> None:
        memory = open_store(None)
        assert isinstance(memory, MemoryConcurrencyStore)
        assert isinstance(memory, ConcurrencyStore)
        await memory.close()
        remote = open_store("redis://127.0.0.1:1/0", prefix="nextapi-test-x:")
        assert isinstance(remote, RedisConcurrencyStore)
        assert remote.prefix == "nextapi-test-x:"
        # an unreachable Redis surfaces as redis-py's ConnectionError, for the caller to handle
        with pytest.raises(redis.exceptions.ConnectionError):
            await remote.acquire("req", [SlotLimit("k", 1)], ttl=1)
        await remote.close()

    asyncio.run(main())


def test_ttl_must_be_positive() -> None:
    async def main() -> None:
        store = MemoryConcurrencyStore()
        with pytest.raises(ValueError):
            await store.acquire("req", [SlotLimit("k", 1)], ttl=0)

    asyncio.run(main())
