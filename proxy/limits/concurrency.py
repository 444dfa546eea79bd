"""Concurrency slots for video tasks, checked at several levels at once.

A create takes one slot on every counter that applies to it (per key, per org, per upstream model,
the company-wide "upstream" cap) or none at all: `acquire` is all-or-nothing and atomic, also
across gateway processes sharing one Redis. The slots are first held by a token (the request id)
with a short ttl, so a process that dies mid-create leaks nothing; `bind` hands them to the task id
once upstream accepted the create (with a long ttl as a safety net), and `release_task` frees them
when the task ends. `release` and `release_task` are idempotent: only the call that actually freed
the slots returns True, and counts never go negative.

`RedisConcurrencyStore` data layout (P = prefix, e.g. "nextapi:"; times are Redis server TIME in
epoch milliseconds, so the clocks of the edges never matter):

    P c:<counter>   sorted set; member "r:<token>" (held by a create) or "t:<task_id>" (bound),
                    score = the member's expiry. in_use = ZCARD after ZREMRANGEBYSCORE -inf now.
    P tok:<token>   string, JSON {"c": [counters], "e": expiry} while held, then
                    {"b": task_id, "e": expiry} after bind: a tombstone until the short ttl ends,
                    so a repeated acquire of the token stays a no-op and a late `release(token)`
                    frees nothing.
    P task:<id>     string, JSON {"c": [counters], "e": expiry}, expiry = bind time + long ttl.
    P tasks         sorted set of bound task ids, score = expiry (for `open_tasks`).

A record counts as gone once its "e" <= now, the same rule and clock as the members' scores, so a
record and its slots always expire together; PEXPIREs (expiry + 1 s) only collect garbage.

Every step that touches more than one key is one Lua script (EVALSHA through `register_script`),
so two processes can never together exceed a limit. Scripts derive the counter and task keys from
P, so use a single Redis (or a Cluster with a hash tag in the prefix, e.g. "{nextapi}:").

Redis unavailability is not handled here: `redis.exceptions.ConnectionError` and `TimeoutError`
propagate from every method (also a ConnectionError when no pooled connection frees up within
2 s), and the caller decides whether to fail open or closed.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from proxy.limits.redisclient import blocking_client


@dataclass(frozen=True)
class SlotLimit:
    counter: str  # e.g. "key:ABC", "org:org_1", "model:seedance-1-0-pro", "upstream"
    limit: int  # max slots held at once on this counter


@dataclass(frozen=True)
class Refusal:
    counter: str  # the first level (in the order given) that had no room
    limit: int
    in_use: int


@runtime_checkable
class ConcurrencyStore(Protocol):
    async def acquire(
        self, token: str, limits: Sequence[SlotLimit], *, ttl: float
    ) -> Refusal | None:
        """Take one slot on every counter, or none and return the first refusal. Idempotent per
        token. Unless bound or released within `ttl` seconds, the slots free themselves."""
        ...

    async def bind(self, token: str, task_id: str, *, ttl: float) -> None:
        """Hand the token's slots to `task_id`, kept at most `ttl` seconds (a safety net).
        A token no longer held (expired, released, already bound) is a no-op."""
        ...

    async def release(self, token: str) -> bool:
        """The create failed: free the token's slots. True if it held any (unbound)."""
        ...

    async def release_task(self, task_id: str) -> bool:
        """The task ended: free its slots. True only for the call that actually freed them."""
        ...

    async def open_tasks(self, limit: int = 1000) -> list[str]:
        """Ids of bound tasks still holding slots, soonest expiry first."""
        ...

    async def in_use(self, counter: str) -> int: ...

    async def close(self) -> None: ...


def _normalize(limits: Sequence[SlotLimit]) -> list[SlotLimit]:
    """One entry per counter, in first-seen order; a repeated counter keeps its tightest limit."""
    merged: dict[str, int] = {}
    for item in limits:
        merged[item.counter] = min(item.limit, merged.get(item.counter, item.limit))
    return [SlotLimit(counter, limit) for counter, limit in merged.items()]


def _ttl_ms(ttl: float) -> int:
    if not ttl > 0:
        raise ValueError(f"ttl must be positive, got {ttl!r}")
    return max(1, math.ceil(ttl * 1000))


# --- in-process store --------------------------------------------------------------------------


@dataclass
class _Holder:
    counters: list[str]
    expires: float
    bound_to: str | None = None  # set on a token after bind (tombstone)


@dataclass
class _MemoryState:
    counters: dict[str, dict[str, float]] = field(default_factory=dict)  # counter -> member -> exp
    tokens: dict[str, _Holder] = field(default_factory=dict)
    tasks: dict[str, _Holder] = field(default_factory=dict)


SWEEP_FLOOR = 1024  # tokens held before the memory store first looks for expired ones


class MemoryConcurrencyStore:
    """One process only. Same semantics as the Redis store; `clock` is injectable for tests."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._state = _MemoryState()
        self._lock = threading.Lock()  # methods never await inside, the lock only guards threads
        self._sweep_at = SWEEP_FLOOR

    def _members(self, counter: str, now: float) -> dict[str, float]:
        members = self._state.counters.get(counter, {})
        for member in [m for m, exp in members.items() if exp <= now]:
            del members[member]
        return members

    def _drop(self, counters: list[str], member: str) -> None:
        for counter in counters:
            members = self._state.counters.get(counter)
            if members is not None:
                members.pop(member, None)
                if not members:
                    del self._state.counters[counter]

    def _token(self, token: str, now: float) -> _Holder | None:
        holder = self._state.tokens.get(token)
        if holder is not None and holder.expires <= now:
            del self._state.tokens[token]
            return None
        return holder

    def _sweep_tokens(self, now: float) -> None:
        """A token is looked up again only by its own create, so an expired one (a bind's
        tombstone, a create that never answered) was kept for the life of the process: 324 bytes
        a create. Once there are twice as many as the last sweep left, drop the expired ones
        (what Redis's PEXPIRE does for the Redis store); amortized O(1) an acquire."""
        tokens = self._state.tokens
        if len(tokens) < self._sweep_at:
            return
        for token in [token for token, holder in tokens.items() if holder.expires <= now]:
            self._drop(tokens.pop(token).counters, "r:" + token)
        self._sweep_at = max(SWEEP_FLOOR, 2 * len(tokens))

    def _task(self, task_id: str, now: float) -> _Holder | None:
        holder = self._state.tasks.get(task_id)
        if holder is not None and holder.expires <= now:
            del self._state.tasks[task_id]
            self._drop(holder.counters, "t:" + task_id)
            return None
        return holder

    async def acquire(
        self, token: str, limits: Sequence[SlotLimit], *, ttl: float
    ) -> Refusal | None:
        ttl_s = _ttl_ms(ttl) / 1000
        with self._lock:
            now = self._clock()
            if self._token(token, now) is not None:
                return None
            wanted = _normalize(limits)
            for item in wanted:
                count = len(self._members(item.counter, now))
                if count >= item.limit:
                    return Refusal(item.counter, item.limit, count)
            for item in wanted:
                self._state.counters.setdefault(item.counter, {})["r:" + token] = now + ttl_s
            self._state.tokens[token] = _Holder([i.counter for i in wanted], now + ttl_s)
            self._sweep_tokens(now)
            return None

    async def bind(self, token: str, task_id: str, *, ttl: float) -> None:
        ttl_s = _ttl_ms(ttl) / 1000
        with self._lock:
            now = self._clock()
            holder = self._token(token, now)
            if holder is None or holder.bound_to is not None:
                return
            task = self._task(task_id, now)
            counters = list(dict.fromkeys((task.counters if task else []) + holder.counters))
            self._drop(holder.counters, "r:" + token)
            for counter in counters:
                self._state.counters.setdefault(counter, {})["t:" + task_id] = now + ttl_s
            self._state.tasks[task_id] = _Holder(counters, now + ttl_s)
            holder.counters, holder.bound_to = [], task_id

    async def release(self, token: str) -> bool:
        with self._lock:
            holder = self._token(token, self._clock())
            if holder is None or holder.bound_to is not None:
                return False
            del self._state.tokens[token]
            self._drop(holder.counters, "r:" + token)
            return True

    async def release_task(self, task_id: str) -> bool:
        with self._lock:
            holder = self._task(task_id, self._clock())
            if holder is None:
                return False
            del self._state.tasks[task_id]
            self._drop(holder.counters, "t:" + task_id)
            return True

    async def open_tasks(self, limit: int = 1000) -> list[str]:
        with self._lock:
            now = self._clock()
            live = [t for t in list(self._state.tasks) if self._task(t, now) is not None]
            live.sort(key=lambda t: self._state.tasks[t].expires)
            return live[: max(0, limit)]

    async def in_use(self, counter: str) -> int:
        with self._lock:
            return len(self._members(counter, self._clock()))

    async def close(self) -> None:
        return None


# --- Redis store -------------------------------------------------------------------------------

_LUA_COMMON = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local SLACK = 1000
local function num(x) return string.format('%.0f', x) end
local function keep(key, ms)
  if redis.call('PTTL', key) < ms + SLACK then redis.call('PEXPIRE', key, ms + SLACK) end
end
local function load(key)
  local raw = redis.call('GET', key)
  if not raw then return nil end
  local rec = cjson.decode(raw)
  if tonumber(rec.e) <= now then return nil end
  return rec
end
"""

# KEYS: tok, c:<counter>... ARGV: member, ttl_ms, limit..., counter...
# -> 0 taken (or token already live), {index, in_use} refused
_LUA_ACQUIRE = (
    _LUA_COMMON
    + """
if load(KEYS[1]) then return 0 end
local n = #KEYS - 1
local ttl = tonumber(ARGV[2])
for i = 1, n do
  redis.call('ZREMRANGEBYSCORE', KEYS[i + 1], '-inf', num(now))
  local count = redis.call('ZCARD', KEYS[i + 1])
  if count >= tonumber(ARGV[2 + i]) then return {i, count} end
end
local counters = {}
for i = 1, n do
  redis.call('ZADD', KEYS[i + 1], num(now + ttl), ARGV[1])
  keep(KEYS[i + 1], ttl)
  counters[i] = ARGV[2 + n + i]
end
redis.call('SET', KEYS[1], cjson.encode({c = counters, e = now + ttl}), 'PX', ttl + SLACK)
return 0
"""
)

# KEYS: tok, task:<id>, tasks. ARGV: prefix, token member, task member, ttl_ms, task_id -> 0|1
_LUA_BIND = (
    _LUA_COMMON
    + """
local rec = load(KEYS[1])
if not rec or rec.b then return 0 end
local ttl = tonumber(ARGV[4])
local counters, seen = {}, {}
local old = load(KEYS[2])
if old then
  for _, c in ipairs(old.c) do
    if not seen[c] then seen[c] = true; counters[#counters + 1] = c end
  end
end
for _, c in ipairs(rec.c) do
  redis.call('ZREM', ARGV[1] .. 'c:' .. c, ARGV[2])
  if not seen[c] then seen[c] = true; counters[#counters + 1] = c end
end
for _, c in ipairs(counters) do
  local key = ARGV[1] .. 'c:' .. c
  redis.call('ZADD', key, num(now + ttl), ARGV[3])
  keep(key, ttl)
end
redis.call('SET', KEYS[2], cjson.encode({c = counters, e = now + ttl}), 'PX', ttl + SLACK)
redis.call('ZADD', KEYS[3], num(now + ttl), ARGV[5])
redis.call('SET', KEYS[1], cjson.encode({b = ARGV[5], e = rec.e}), 'KEEPTTL')
return 1
"""
)

# KEYS: tok or task:<id>, [tasks]. ARGV: prefix, member, [task_id] -> 0|1
_LUA_RELEASE = (
    _LUA_COMMON
    + """
local rec = load(KEYS[1])
if KEYS[2] then redis.call('ZREM', KEYS[2], ARGV[3]) end
if not rec or rec.b then return 0 end
for _, c in ipairs(rec.c) do redis.call('ZREM', ARGV[1] .. 'c:' .. c, ARGV[2]) end
redis.call('DEL', KEYS[1])
return 1
"""
)

# KEYS: a sorted set. ARGV: max members to list (0: just count) -> count or ids
_LUA_LIVE = (
    _LUA_COMMON
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', num(now))
local limit = tonumber(ARGV[1])
if limit <= 0 then return redis.call('ZCARD', KEYS[1]) end
return redis.call('ZRANGE', KEYS[1], 0, limit - 1)
"""
)


class RedisConcurrencyStore:
    """Shared by every gateway process through one Redis; see the module docstring for the layout.
    Connection and timeout errors of redis-py propagate to the caller."""

    def __init__(self, url: str, *, prefix: str = "nextapi:", max_connections: int = 64) -> None:
        self.prefix = prefix
        self._redis = blocking_client(url, max_connections)
        self._acquire = self._redis.register_script(_LUA_ACQUIRE)
        self._bind = self._redis.register_script(_LUA_BIND)
        self._release = self._redis.register_script(_LUA_RELEASE)
        self._live = self._redis.register_script(_LUA_LIVE)

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}:{name}"

    async def acquire(
        self, token: str, limits: Sequence[SlotLimit], *, ttl: float
    ) -> Refusal | None:
        ttl_ms = _ttl_ms(ttl)
        wanted = _normalize(limits)
        keys = [self._key("tok", token)] + [self._key("c", i.counter) for i in wanted]
        args: list[str | int] = ["r:" + token, ttl_ms]
        args += [i.limit for i in wanted] + [i.counter for i in wanted]
        result = await self._acquire(keys=keys, args=args)
        if isinstance(result, list):
            item = wanted[int(result[0]) - 1]
            return Refusal(item.counter, item.limit, int(result[1]))
        return None

    async def bind(self, token: str, task_id: str, *, ttl: float) -> None:
        keys = [self._key("tok", token), self._key("task", task_id), self.prefix + "tasks"]
        args = [self.prefix, "r:" + token, "t:" + task_id, _ttl_ms(ttl), task_id]
        await self._bind(keys=keys, args=args)

    async def release(self, token: str) -> bool:
        keys = [self._key("tok", token)]
        return bool(await self._release(keys=keys, args=[self.prefix, "r:" + token]))

    async def release_task(self, task_id: str) -> bool:
        keys = [self._key("task", task_id), self.prefix + "tasks"]
        result = await self._release(keys=keys, args=[self.prefix, "t:" + task_id, task_id])
        return bool(result)

    async def open_tasks(self, limit: int = 1000) -> list[str]:
        if limit <= 0:
            return []
        ids = await self._live(keys=[self.prefix + "tasks"], args=[limit])
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]

    async def in_use(self, counter: str) -> int:
        return int(await self._live(keys=[self._key("c", counter)], args=[0]))

    async def close(self) -> None:
        await self._redis.aclose()


def open_store(redis_url: str | None, *, prefix: str = "nextapi:") -> ConcurrencyStore:
    """A Redis-backed store shared by all edges, or an in-process one when no URL is configured."""
    if redis_url is None:
        return MemoryConcurrencyStore()
    return RedisConcurrencyStore(redis_url, prefix=prefix)
