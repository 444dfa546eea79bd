"""The shared parts the edge's addons use: one instance per edge process, configured whole from
one EdgeConfig by the composition root (launch/edge.py; under `mitmdump -s addons/gateway.py`,
the Standalone addon stands in for it). The addons only read it."""

from __future__ import annotations

import dataclasses
import os
import socket
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from proxy.auth.authenticator import KeyAuthenticator
from proxy.auth.throttle import AuthThrottle, ThrottleLimits
from proxy.core.wallet import EventSink, Wallet
from proxy.limits.concurrency import ConcurrencyStore, MemoryConcurrencyStore, RedisConcurrencyStore
from proxy.limits.limiter import RateLimiter
from proxy.limits.redis_windows import RedisWindowLimiter
from proxy.limits.resilient import Breaker, ResilientLimiter, ResilientSlots
from proxy.options import BY_NAME
from proxy.policy import PolicyStore
from proxy.tasks.watch import TaskWatch
from proxy.upstream.client import UpstreamClient

if TYPE_CHECKING:
    from proxy.usage.spool import Spool
    from proxy.videos.delivery import VideoDelivery
    from proxy.videos.origin import VideoOrigin

# How this edge process names itself to the control plane: one name per process.
EDGE_ID = f"{socket.gethostname()}:{os.getpid()}"
UPSTREAM_KEY_ENV = "NEXTAPI_UPSTREAM_KEY"


def origin_of(url: str) -> str:
    """scheme://host:port of a URL, the port spelled out (how the relay names its upstream)."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}"


@dataclass(frozen=True)
class EdgeConfig:
    """What the services are built from: option values of the schema (proxy/options/), read by
    their schema names, and the upstream's key from the environment."""

    upstream: str  # Seedance's base URL
    upstream_key: str
    upstream_timeout: float
    upstream_connect_timeout: float
    default_limits: dict[str, int]  # for orgs that set none
    model_limits: dict[str, dict[str, int]]  # company-wide caps per upstream model
    throttle: ThrottleLimits  # failed authentications
    snapshot_max_age: float | None  # seconds an edge apart trusts its policy; None: in-process
    redis_url: str
    redis_prefix: str
    redis_failure: str
    public_url: str  # as configured: "", a URL, or `auto` (the listener's own address)

    @classmethod
    def from_values(cls, value: Callable[[str], Any], *, upstream: str, apart: bool) -> EdgeConfig:
        """`value(name)`: the schema option `name`'s value; `apart`: the edge's policy comes from
        a control plane elsewhere (it then goes stale after snapshot_max_age_hours)."""
        hours = value("snapshot_max_age_hours")
        return cls(
            upstream=upstream,
            upstream_key=os.environ.get(UPSTREAM_KEY_ENV, ""),
            upstream_timeout=value("upstream_timeout"),
            upstream_connect_timeout=value("upstream_connect_timeout"),
            default_limits=value("default_rate_limit"),
            model_limits=value("model_limits"),
            throttle=ThrottleLimits(
                value("auth_failures_per_ip_per_minute"),
                value("wrong_secrets_per_key_per_minute"),
                value("wrong_secrets_per_key_ceiling_per_minute"),
            ),
            snapshot_max_age=hours * 3600 if apart else None,
            redis_url=value("redis_url"),
            redis_prefix=value("redis_prefix"),
            redis_failure=value("redis_failure"),
            public_url=value("public_url"),
        )

    @classmethod
    def from_schema(
        cls, upstream: str, *, upstream_key: str, apart: bool = False, **values: Any
    ) -> EdgeConfig:
        """The schema's defaults but for `values` (by schema name): for an edge assembled in a
        test or a benchmark."""
        config = cls.from_values(
            lambda name: values[name] if name in values else BY_NAME[name].fresh_default(),
            upstream=upstream,
            apart=apart,
        )
        return dataclasses.replace(config, upstream_key=upstream_key)


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
    # Where the edge listens as this machine reaches it (a wildcard host: loopback), once it
    # does: resolves public_url `auto` (set by configure).
    listen_address: Callable[[], tuple[str, int] | None] = lambda: None
    configured_public_url: str = ""  # "", a URL, or `auto`
    video_origin: VideoOrigin | None = None  # streams whole videos (addons/videos.py)
    auth: KeyAuthenticator = field(init=False)  # on the policy above
    gatekeeper: AuthThrottle = field(init=False)  # failed-auth throttling, on the limits above
    watch: TaskWatch = field(init=False)
    _retired: list[UpstreamClient] = field(init=False, default_factory=list)
    _upstream_client: tuple[str, float, float] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.auth = KeyAuthenticator(self.policy)
        self.gatekeeper = AuthThrottle(self.limits)
        self.watch = TaskWatch(self.counters, self.wallet)

    def configure(
        self,
        config: EdgeConfig,
        listen_address: Callable[[], tuple[str, int] | None] | None = None,
    ) -> None:
        """Every part the options decide, from one config, before the edge serves (again when a
        mitmproxy option changes): limits, caps, failed-auth throttling, the policy's age,
        Redis, the upstream client, the public URL. Raises ValueError without the upstream key."""
        if not config.upstream_key:
            raise ValueError(f"{UPSTREAM_KEY_ENV} is not set")
        self.default_limits = config.default_limits
        self.model_limits = config.model_limits
        self.gatekeeper.limits = config.throttle
        self.policy.max_age = config.snapshot_max_age
        if config.redis_url and self.breaker is None:
            self.use_redis(
                config.redis_url, prefix=config.redis_prefix, failure=config.redis_failure
            )
        client = (config.upstream_key, config.upstream_connect_timeout, config.upstream_timeout)
        if self.upstream is None or client != self._upstream_client:
            # A new client only when its settings change (any option change calls this again);
            # the old one's requests in flight finish, and it is closed at the end.
            if self.upstream is not None:
                self._retired.append(self.upstream)
            key, connect_timeout, timeout = client
            self.upstream = UpstreamClient(key, connect_timeout=connect_timeout, timeout=timeout)
            self._upstream_client = client
        self.upstream_origin = origin_of(config.upstream)
        self.configured_public_url = config.public_url
        if listen_address is not None:
            self.listen_address = listen_address
        self.public_url = self._resolve_public_url()

    def public_origin(self) -> str:
        """The edge's origin as customers and the upstream reach it ("": none configured); `auto`
        is the listener's own address, known once the edge listens."""
        if not self.public_url and self.configured_public_url == "auto":
            self.public_url = self._resolve_public_url()
        return self.public_url

    def _resolve_public_url(self) -> str:
        url = self.configured_public_url
        if url == "auto":
            address = self.listen_address()
            if address is None:
                return ""
            host, port = address  # as this machine reaches it (listen_address maps wildcards)
            url = f"http://{host}:{port}"
        return url.rstrip("/")

    async def aclose(self) -> None:
        """Closes what configure opened, and the counters and key verifier."""
        for client in [*self._retired, *([self.upstream] if self.upstream else [])]:
            await client.aclose()
        self._retired.clear()
        await self.counters.close()
        self.auth.close()

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
        return await self.videos.localize(task, days, self.public_origin())

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
