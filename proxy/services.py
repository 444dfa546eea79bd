"""The shared parts the edge's addons use: one instance per edge process."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from proxy.auth.authenticator import KeyAuthenticator
from proxy.auth.throttle import AuthThrottle
from proxy.core.wallet import EventSink, Wallet
from proxy.limits.concurrency import ConcurrencyStore, MemoryConcurrencyStore, RedisConcurrencyStore
from proxy.limits.limiter import RateLimiter
from proxy.limits.redis_windows import RedisWindowLimiter
from proxy.limits.resilient import Breaker, ResilientLimiter, ResilientSlots
from proxy.policy import PolicyStore
from proxy.tasks.watch import TaskWatch
from proxy.upstream.client import UpstreamClient

if TYPE_CHECKING:
    from proxy.usage.spool import Spool
    from proxy.videos.delivery import VideoDelivery
    from proxy.videos.origin import VideoOrigin

# How this edge process names itself to the control plane: one name per process.
EDGE_ID = f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class EdgeServices:
    policy: PolicyStore = field(default_factory=PolicyStore)
    limits: RateLimiter = field(default_factory=RateLimiter)
    counters: ConcurrencyStore = field(default_factory=MemoryConcurrencyStore)
    default_limits: dict[str, int] = field(default_factory=dict)  # for orgs that set none
    # Company-wide caps per upstream model (set by the Quota addon, which enforces them).
    model_limits: dict[str, dict[str, int]] = field(default_factory=dict)
    spool: Spool | None = None  # set once the process has started its usage spool
    breaker: Breaker | None = None  # set when counters are shared through Redis
    wallet: Wallet | None = None  # the credits ledger: in-process, or the control plane's
    upstream: UpstreamClient | None = None  # the relay's client, for the edge's own calls
    upstream_origin: str = ""  # scheme://host:port of the upstream
    videos: VideoDelivery | None = None  # the gateway's copies of videos, when it keeps them
    public_url: str = ""  # the edge's own origin as customers reach it (links to videos)
    video_origin: VideoOrigin | None = None  # streams whole videos (addons/videos.py)
    auth: KeyAuthenticator = field(init=False)  # on the policy above
    gatekeeper: AuthThrottle = field(init=False)  # failed-auth throttling, on the limits above
    watch: TaskWatch = field(init=False)

    def __post_init__(self) -> None:
        self.auth = KeyAuthenticator(self.policy)
        self.gatekeeper = AuthThrottle(self.limits)
        self.watch = TaskWatch(self.counters, self.wallet)

    def use_events(self, events: EventSink) -> None:
        self.watch.events = events

    def use_wallet(self, wallet: Wallet) -> None:
        self.wallet = self.watch.wallet = wallet

    def use_redis(self, url: str, *, prefix: str = "nextapi:", failure: str = "local") -> None:
        """Share rate limits, failed-auth counts and concurrency slots with other edges."""
        self.breaker = Breaker(failure)
        shared = RedisWindowLimiter(url, prefix=prefix)  # one round trip for all windows
        self.limits = ResilientLimiter(shared, RateLimiter(), self.breaker)
        self.counters = ResilientSlots(
            RedisConcurrencyStore(url, prefix=prefix), MemoryConcurrencyStore(), self.breaker
        )
        self.gatekeeper.limiter = self.limits
        self.watch.counters = self.counters

    async def present(self, task: dict[str, Any], org_id: str | None) -> dict[str, Any]:
        """A task object as the customer (and its webhooks) should see it: a succeeded task's
        video links point at the gateway's own copies, kept for the org's retention period."""
        if self.videos is None or org_id is None:
            return task
        org = self.policy.snapshot.orgs.get(org_id)
        days = org.video_retention_days if org is not None else 7
        return await self.videos.localize(task, days, self.public_url)

    def report(self) -> dict[str, Any]:
        """What this edge tells the control plane about itself (GET /v1/system lists it): the
        policy version it serves, its usage spool's backlog, its counters' backend."""
        spool = self.spool
        backlog = None
        if spool is not None:
            backlog = len(spool.sealed_segments()) + int(spool.has_unsealed_records)
        if self.breaker is None:
            counters = "memory"
        else:
            counters = "redis ok" if self.breaker.healthy else "redis unreachable"
        return {
            "id": EDGE_ID,
            "snapshot_version": self.policy.snapshot.version,
            "spool_backlog": backlog,
            "counters": counters,
        }
