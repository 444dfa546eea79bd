"""Rate-limit windows in Redis, one round trip per request for all of them.

`limits`' own Redis strategy makes a test, a hit and a stats call per window, one after the
other: with a key's and an org's minute and day windows, twelve round trips a request. Here one
Lua script (EVALSHA through redis-py's `register_script`, which loads it again on NOSCRIPT) tests
every window, counts the request against all of them only if all have room, and returns their
counts; the stats are computed from those counts here. A create's model cap rides in the same
call (`check_then`): made only once the key's and org's windows admitted the request.

The counters are those of `limits`' sliding-window counter as its memory storage keeps them:
clock-aligned windows (`<counter>/<int(now / expiry)>`), the previous window weighted by the
part of it that still overlaps, a request admitted while `floor(weighted) + 1 <= limit`. So an
edge on Redis answers exactly as an edge on memory counters would, which the unit tests check
sequence by sequence. The time is the edge's clock (the windows' keys depend on it); edges on
several machines need synchronized clocks, as for any clock-aligned window.

A window found full is remembered until the first moment it could free a request (the reset the
stats name), and answered without Redis until then: counts only grow meanwhile, so this never
admits a request that Redis would refuse.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from proxy.limits.limiter import Decision, RateLimiter, Window, tighter
from proxy.limits.redisclient import blocking_client

# KEYS: per window, its previous and current counter. ARGV: mode ("check": test a group of
# windows, then hit all of it or none; "test": nothing counted; "count": hit each window that has
# room), now, split, then per window its expiry (s) and limit. In "check" and "test" the windows
# 1..split are one group and the rest another, made only if the first admitted the request (a
# create's key and org windows, then its model's cap). Returns the index of the first full window
# (0: none), then per window its previous and current count after the call (0 for a group not
# made). The arithmetic is the memory storage's, in the same order of operations on the same
# doubles.
_LUA_WINDOWS = """
local mode = ARGV[1]
local now = tonumber(ARGV[2])
local split = tonumber(ARGV[3])
local n = #KEYS / 2
local counts = {}
for i = 1, 2 * n do
    counts[i] = 0
end
local function has_room(i)
    local expiry = tonumber(ARGV[2 + 2 * i])
    local limit = tonumber(ARGV[3 + 2 * i])
    local previous = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
    local current = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
    local previous_ttl = 0
    if previous ~= 0 then
        previous_ttl = (1 - (((now - expiry) / expiry) % 1)) * expiry
    end
    local weighted = previous * previous_ttl / expiry + current
    counts[2 * i - 1] = previous
    counts[2 * i] = current
    return math.floor(weighted) + 1 <= limit
end
local function hit(i)
    local current = redis.call('INCR', KEYS[2 * i])
    if current == 1 then
        redis.call('PEXPIRE', KEYS[2 * i], tonumber(ARGV[2 + 2 * i]) * 2000)
    end
    counts[2 * i] = current
end
local full = 0
if mode == 'count' then
    for i = 1, n do
        if has_room(i) then
            hit(i)
        end
    end
else
    local first, last = 1, split
    while first <= n and full == 0 do
        for i = first, last do
            if not has_room(i) and full == 0 then
                full = i
            end
        end
        if full == 0 and mode == 'check' then
            for i = first, last do
                hit(i)
            end
        end
        first, last = last + 1, n
    end
end
local answer = {full}
for i = 1, 2 * n do
    answer[i + 1] = counts[i]
end
return answer
"""


def window_stats(window: Window, previous: int, current: int, now: float) -> tuple[int, float]:
    """(remaining, seconds until the window frees a request), as `limits` computes them."""
    expiry = window.expiry
    previous_ttl = 0.0 if previous == 0 else (1 - (((now - expiry) / expiry) % 1)) * expiry
    current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
    weighted = previous * previous_ttl / expiry + current
    remaining = max(0, window.limit - math.floor(weighted))
    if not (previous or current):
        return remaining, 0.0
    previous_reset, current_reset = math.inf, math.inf
    if previous:
        previous_reset = previous_ttl % (expiry / previous)
    if current:
        current_reset = current_ttl % expiry
    return remaining, min(previous_reset, current_reset)


def _decision(allowed: bool, window: Window, previous: int, current: int, now: float) -> Decision:
    remaining, reset_in = window_stats(window, previous, current, now)
    reset = max(0, math.ceil((now + reset_in) - now))
    if not allowed:
        reset = max(1, reset)
    return Decision(allowed, window, remaining, reset)


def _admitted(windows: Sequence[Window], answer: list[int], offset: int, now: float) -> Decision:
    """The tightest of `windows`, which the script found at `offset` and counted."""
    tightest: Decision | None = None
    for i, window in enumerate(windows, start=offset):
        tightest = tighter(
            tightest, _decision(True, window, answer[2 * i + 1], answer[2 * i + 2], now)
        )
    return tightest if tightest is not None else Decision(True, None)


class RedisWindowLimiter(RateLimiter):
    """The RateLimiter interface on one Redis, one script call per check, test or count."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "nextapi:",
        clock: Callable[[], float] = time.time,
        max_connections: int = 64,
    ) -> None:
        self.prefix = prefix
        self.clock = clock
        self.redis = blocking_client(url, max_connections)
        self._script = self.redis.register_script(_LUA_WINDOWS)
        self._full_until: dict[Window, float] = {}  # windows known full, until their reset

    def _keys(self, windows: Sequence[Window], now: float) -> list[str]:
        keys = []
        for window in windows:
            # The limit and expiry are part of the name, as in `limits`: a changed limit
            # starts a counter of its own.
            base = f"{self.prefix}rl:{window.counter}:{window.limit}:{window.expiry}/"
            keys.append(f"{base}{int((now - window.expiry) / window.expiry)}")
            keys.append(f"{base}{int(now / window.expiry)}")
        return keys

    async def _run(
        self, mode: str, windows: Sequence[Window], now: float, split: int | None = None
    ) -> list[int]:
        args: list[str | int] = [mode, repr(now), len(windows) if split is None else split]
        for window in windows:
            args += [window.expiry, window.limit]
        answer = await self._script(keys=self._keys(windows, now), args=args)
        return [int(value) for value in answer]

    def _known_full(self, windows: Sequence[Window], now: float) -> Decision | None:
        # Only the first window: the memory limiter names the first full window in order, and
        # a window after it known full says nothing of those before it.
        window = windows[0]
        until = self._full_until.get(window)
        if until is None:
            return None
        if until > now:
            return Decision(False, window, 0, max(1, math.ceil(until - now)))
        del self._full_until[window]
        return None

    async def check(self, windows: Sequence[Window]) -> Decision:
        decision, _ = await self.check_then(windows, ())
        return decision

    async def check_then(
        self, first: Sequence[Window], then: Sequence[Window]
    ) -> tuple[Decision, Decision | None]:
        """Both groups in one script call: `then` is tested and counted only if `first` admitted
        the request, as the memory limiter's two checks one after the other."""
        if not first and not then:
            return Decision(True, None), None
        now = self.clock()
        if first:
            if (known := self._known_full(first, now)) is not None:
                return known, None
        elif (known := self._known_full(then, now)) is not None:
            return Decision(True, None), known
        windows = [*first, *then]
        answer = await self._run("check", windows, now, len(first))
        full = answer[0]
        if full and full <= len(first):
            return self._refused(windows, answer, full, now), None
        admitted = _admitted(first, answer, 0, now)
        if not then:
            return admitted, None
        if full:
            return admitted, self._refused(windows, answer, full, now)
        return admitted, _admitted(then, answer, len(first), now)

    def _refused(
        self, windows: Sequence[Window], answer: list[int], full: int, now: float
    ) -> Decision:
        window = windows[full - 1]
        decision = _decision(False, window, answer[2 * full - 1], answer[2 * full], now)
        self._remember_full_exactly(decision, window, answer, full, now)
        return decision

    def _remember_full_exactly(
        self, decision: Decision, window: Window, answer: list[int], full: int, now: float
    ) -> None:
        # Until the unrounded reset, not the whole seconds of the header.
        _, reset_in = window_stats(window, answer[2 * full - 1], answer[2 * full], now)
        if decision.remaining == 0 and reset_in > 0:
            if len(self._full_until) > 10_000:  # many keys refused at once: start again
                self._full_until.clear()
            self._full_until[window] = now + reset_in

    async def blocked(self, windows: Sequence[Window]) -> Decision | None:
        if not windows:
            return None
        now = self.clock()
        answer = await self._run("test", windows, now)
        if full := answer[0]:
            return _decision(False, windows[full - 1], answer[2 * full - 1], answer[2 * full], now)
        return None

    async def count(self, windows: Sequence[Window]) -> None:
        if windows:
            await self._run("count", windows, self.clock())

    async def clear(self, window: Window) -> None:
        self._full_until.pop(window, None)
        now = self.clock()
        await self.redis.delete(*self._keys([window], now))

    async def close(self) -> None:
        await self.redis.aclose()
