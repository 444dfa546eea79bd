"""What the key's and org's windows and the per-model cap count, through the addons that decide
it (RateLimit, Validation, Idempotency, Callbacks, Quota in the gateway's order), on the memory
limiter and on the Redis one.

Pinned here: every authenticated request counts against the key's and org's windows, whatever
answers it later (an invalid create, an idempotent replay); over those windows the 429 wins over
any later error; the model cap counts only the creates that reach Quota, and only once the
key's and org's windows admitted them; an admitted answer carries the key's and org's headers.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils

from addons.callback_ingress import Callbacks
from addons.idempotency import Idempotency
from addons.quota import Quota
from addons.ratelimit import RateLimit
from addons.validation import Validation
from proxy.auth.authenticator import Identity
from proxy.context import METADATA_KEY, RequestContext
from proxy.core import idempotency
from proxy.core.idempotency import Claim
from proxy.core.seedance.catalog import Catalog
from proxy.core.seedance.routes import CREATE, LIST
from proxy.limits.limiter import RateLimiter
from proxy.limits.redis_windows import RedisWindowLimiter
from proxy.policy import KeyPolicy, OrgPolicy, Snapshot
from proxy.services import EdgeConfig, EdgeServices

REDIS_URL = os.environ.get("NEXTAPI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TASKS = "/api/v3/contents/generations/tasks"
MODEL = "seedance-1-0-pro-250528"
UPSTREAM = "https://ark.ap-southeast.bytepluses.com"
VALID = {"model": MODEL, "content": [{"type": "text", "text": "a lighthouse --dur 2"}]}
INVALID = b"{oops"


class FakeWallet:
    """Answers idempotency claims as told; records what the Idempotency addon settles."""

    def __init__(self) -> None:
        self.outcome = idempotency.NEW
        self.claims = 0
        self.released = 0

    async def idempotency_claim(self, org_id: str, key: str, digest: str, request_id: str) -> Claim:
        self.claims += 1
        if self.outcome == idempotency.REPLAY:
            return Claim(idempotency.REPLAY, 200, b'{"id":"cgt-first"}')
        return Claim(self.outcome)

    async def idempotency_finish(self, *args: Any) -> None:
        pass

    async def idempotency_release(self, *args: Any) -> None:
        self.released += 1


class CountingLimiter(RedisWindowLimiter):
    """The Redis limiter, counting its script calls (one round trip each)."""

    round_trips = 0

    async def _run(self, mode: str, windows: Any, now: float, *rest: Any) -> list[int]:
        self.round_trips += 1
        return await super()._run(mode, windows, now, *rest)


class Edge:
    """The addon chain of one edge, driven hook by hook as mitmproxy does."""

    def __init__(self, services: EdgeServices, wallet: FakeWallet) -> None:
        self.services, self.wallet = services, wallet
        self.addons = [
            RateLimit(services),
            Validation(services),
            Idempotency(services),
            Callbacks(services),
            Quota(services),
        ]

    async def send(
        self, body: bytes | dict[str, Any], key: KeyPolicy, *, route=CREATE, **headers: str
    ) -> http.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        method = b"POST" if route == CREATE else b"GET"
        request = tutils.treq(
            method=method,
            path=TASKS.encode(),
            headers=http.Headers([(k.encode(), v.encode()) for k, v in headers.items()]),
            content=content,
        )
        flow = tflow.tflow(req=request)
        org = self.services.policy.snapshot.orgs[key.org_id]
        flow.metadata[METADATA_KEY] = RequestContext(f"req_{uuid.uuid4().hex}", route, None)
        flow.metadata[METADATA_KEY].identity = Identity(key, org)
        for hook in ("requestheaders", "request"):
            await self._hook(hook, flow)
        if flow.response is None:  # the upstream's answer to what the chain let through
            flow.response = http.Response.make(200, b'{"id":"cgt-new"}')
        await self._hook("response", flow)
        return flow.response

    async def _hook(self, name: str, flow: http.HTTPFlow) -> None:
        for addon in self.addons:
            method = getattr(addon, name, None)
            if method is not None and inspect.isawaitable(result := method(flow)):
                await result


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[float]:
    # One instant for the whole test: no window boundary falls between its requests.
    now = (time.time() // 60) * 60 + 7.5
    monkeypatch.setattr(time, "time", lambda: now)
    yield now


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest, clock: float) -> Iterator[RateLimiter]:
    if request.param == "memory":
        yield RateLimiter()
        return
    prefix = f"nextapi-test-{uuid.uuid4().hex[:12]}:"
    yield CountingLimiter(REDIS_URL, prefix=prefix, clock=lambda: clock)
    client = redis.Redis.from_url(REDIS_URL)
    for name in client.scan_iter(match=f"{prefix}*"):
        client.delete(name)
    client.close()


def scenario(limiter: RateLimiter, model_rpm: int | None, test: Any) -> None:
    """Runs `test(edge, key)` on an edge whose key may make 3 requests a minute."""

    async def body() -> None:
        services = EdgeServices(limits=limiter)
        org = OrgPolicy("org_1", "active", webhooks={"https://hooks.example/ok": "wh_1"})
        key = KeyPolicy(
            "KEY1", "org_1", "active", "$argon2id$x", rate_limit={"requests_per_minute": 3}
        )
        services.policy.replace(
            Snapshot(version=1, orgs={"org_1": org}, keys={"KEY1": key}, catalog=Catalog.load())
        )
        wallet = FakeWallet()
        services.use_wallet(wallet)  # type: ignore[arg-type]
        edge = Edge(services, wallet)
        caps = {MODEL: {"requests_per_minute": model_rpm}} if model_rpm else {}
        # As the composition root does, from the `model_limits` option.
        services.configure(EdgeConfig.from_schema(UPSTREAM, upstream_key="up", model_limits=caps))
        with taddons.context(*edge.addons):
            await test(edge, key)
        if isinstance(limiter, RedisWindowLimiter):
            await limiter.close()
        await services.aclose()

    asyncio.run(body())


def code(response: http.Response) -> str:
    return json.loads(response.content)["error"]["code"] if response.status_code >= 400 else ""


@pytest.mark.parametrize("model_rpm", [None, 10])
def test_an_invalid_create_counts_and_over_the_limit_the_429_wins(
    limiter: RateLimiter, model_rpm: int | None
) -> None:
    async def test(edge: Edge, key: KeyPolicy) -> None:
        first = await edge.send(INVALID, key)
        assert (first.status_code, first.headers["RateLimit-Remaining"]) == (400, "2")
        assert (await edge.send(VALID, key)).headers["RateLimit-Remaining"] == "1"
        assert (await edge.send(b"", key, route=LIST)).headers["RateLimit-Remaining"] == "0"
        refused = await edge.send(INVALID, key)  # invalid and over the limit
        assert (refused.status_code, code(refused)) == (429, "RateLimitExceeded")
        assert "key" in json.loads(refused.content)["error"]["message"]
        assert int(refused.headers["Retry-After"]) >= 1

    scenario(limiter, model_rpm, test)


@pytest.mark.parametrize("model_rpm", [None, 10])
def test_an_idempotent_replay_counts_and_is_refused_over_the_limit(
    limiter: RateLimiter, model_rpm: int | None
) -> None:
    async def test(edge: Edge, key: KeyPolicy) -> None:
        edge.wallet.outcome = idempotency.REPLAY
        replays = [await edge.send(VALID, key, **{"Idempotency-Key": "k-1"}) for _ in range(4)]
        assert [r.status_code for r in replays] == [200, 200, 200, 429]
        assert replays[0].headers["Idempotent-Replayed"] == "true"
        assert replays[2].headers["RateLimit-Remaining"] == "0"
        # The refused one was never looked up: the rate limit answers first.
        assert edge.wallet.claims == 3

    scenario(limiter, model_rpm, test)


def test_the_model_cap_counts_only_creates_that_reach_it(limiter: RateLimiter) -> None:
    async def test(edge: Edge, key: KeyPolicy) -> None:
        other = KeyPolicy("KEY2", "org_1", "active", "$argon2id$x")  # no limits of its own
        assert (await edge.send(INVALID, other)).status_code == 400
        edge.wallet.outcome = idempotency.REPLAY
        assert (await edge.send(VALID, other, **{"Idempotency-Key": "k"})).status_code == 200
        edge.wallet.outcome = idempotency.MISMATCH
        assert (await edge.send(VALID, other, **{"Idempotency-Key": "k"})).status_code == 422
        edge.wallet.outcome = idempotency.IN_PROGRESS
        assert (await edge.send(VALID, other, **{"Idempotency-Key": "k"})).status_code == 409
        unregistered = {**VALID, "callback_url": "https://hooks.example/nope"}
        assert (await edge.send(unregistered, other)).status_code == 400
        # None of those counted against the model's 2 a minute: both of these go through.
        edge.wallet.outcome = idempotency.NEW
        assert (await edge.send(VALID, other, **{"Idempotency-Key": "n"})).status_code == 200
        assert (await edge.send(VALID, other)).status_code == 200
        capped = await edge.send(VALID, other)
        assert (capped.status_code, code(capped)) == (429, "RateLimitExceeded")
        assert "model" in json.loads(capped.content)["error"]["message"]
        # The headers are the customer's own windows (the org's defaults: the key has none),
        # on top of the model's refusal, whose Retry-After stays.
        assert (
            capped.headers["RateLimit-Limit"] == "600" and "RateLimit-Remaining" in capped.headers
        )
        assert int(capped.headers["Retry-After"]) >= 1

    scenario(limiter, 2, test)


def test_a_create_refused_by_the_model_cap_still_counts_for_the_key(limiter: RateLimiter) -> None:
    async def test(edge: Edge, key: KeyPolicy) -> None:
        assert (await edge.send(VALID, key)).status_code == 200
        capped = await edge.send(VALID, key)
        assert "model" in json.loads(capped.content)["error"]["message"]
        # The key's headers are added on top of the model's refusal (its Retry-After stays).
        assert capped.headers["RateLimit-Limit"] == "3"
        assert capped.headers["RateLimit-Remaining"] == "1"
        assert int(capped.headers["Retry-After"]) >= 1
        assert (await edge.send(b"", key, route=LIST)).headers["RateLimit-Remaining"] == "0"
        refused = await edge.send(VALID, key)
        assert "key" in json.loads(refused.content)["error"]["message"]

    scenario(limiter, 1, test)


def test_a_create_refused_by_the_key_window_is_not_counted_by_the_model_cap(
    limiter: RateLimiter,
) -> None:
    async def test(edge: Edge, key: KeyPolicy) -> None:
        assert (await edge.send(VALID, key)).status_code == 200
        assert (await edge.send(b"", key, route=LIST)).status_code == 200
        assert (await edge.send(b"", key, route=LIST)).headers["RateLimit-Remaining"] == "0"
        for _ in range(3):
            refused = await edge.send(VALID, key)
            assert "key" in json.loads(refused.content)["error"]["message"]
        # The model's 3 a minute: one taken so far, so another key gets exactly two more.
        other = KeyPolicy("KEY2", "org_1", "active", "$argon2id$x")
        answers = [await edge.send(VALID, other) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert "model" in json.loads(answers[2].content)["error"]["message"]

    scenario(limiter, 3, test)


def test_an_admitted_create_carries_the_key_windows_headers(limiter: RateLimiter) -> None:
    async def test(edge: Edge, key: KeyPolicy) -> None:
        admitted = await edge.send(VALID, key)
        assert admitted.status_code == 200
        # The model's window has fewer left (1 of 2) but the key's (2 of 3) is what is shown.
        assert admitted.headers["RateLimit-Limit"] == "3"
        assert admitted.headers["RateLimit-Remaining"] == "2"

    scenario(limiter, 2, test)


def test_a_capped_create_costs_one_round_trip(clock: float) -> None:
    """Through the chain on Redis: the key's window and the model cap in one call for a create
    that reaches Quota, one for a create answered before (invalid, replayed); an idempotent
    create makes its key's check before its claim, so two."""
    prefix = f"nextapi-test-{uuid.uuid4().hex[:12]}:"
    limiter = CountingLimiter(REDIS_URL, prefix=prefix, clock=lambda: clock)

    async def test(edge: Edge, _: KeyPolicy) -> None:
        limits = {"requests_per_minute": 100, "requests_per_day": 1000}
        key = KeyPolicy("KEY3", "org_1", "active", "$argon2id$x", rate_limit=limits)
        trips = []
        for body, headers, outcome in [
            (VALID, {}, idempotency.NEW),
            (INVALID, {}, idempotency.NEW),
            (VALID, {"Idempotency-Key": "r"}, idempotency.REPLAY),
            (VALID, {"Idempotency-Key": "n"}, idempotency.NEW),
        ]:
            edge.wallet.outcome = outcome
            before = limiter.round_trips
            assert (await edge.send(body, key, **headers)).status_code in (200, 400)
            trips.append(limiter.round_trips - before)
        assert trips == [1, 1, 1, 2]

    try:
        scenario(limiter, 10, test)
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for name in client.scan_iter(match=f"{prefix}*"):
            client.delete(name)
        client.close()
