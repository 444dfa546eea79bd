"""The shapes of `GET /v1/system` (described in control/api/openapi.py)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from control.api.schemas import Time


class EdgeStatus(Struct):
    """An edge as it last reported itself (X-Edge-* headers on its calls)."""

    id: Annotated[str, Meta(description="The edge's name (host:pid), or its address.")]
    address: str | None
    last_seen_at: Time
    connected: Annotated[bool, Meta(description="Heard from within the last 60 s.")]
    snapshot_version: Annotated[int | None, Meta(description="Policy version it serves.")]
    spool_backlog: Annotated[
        int | None, Meta(description="Usage spool segments not yet acknowledged.")
    ]
    counters: Annotated[
        str | None, Meta(description="`memory`, `redis ok` or `redis unreachable`.")
    ]
    reports: Annotated[bool, Meta(description="False: an older edge, listed by address.")]


class RedisStatus(Struct):
    """Redis as the connected edges report it (the control plane keeps no counters)."""

    configured: bool
    ok: bool | None
    edges_on_redis: int
    edges_unreachable: int


class RetentionRun(Struct):
    started_at: Time
    seconds: float
    deleted: dict[str, int]
    error: str | None


class RetentionStatus(Struct):
    interval_hours: float | None
    last_run: RetentionRun | None
    next_run_at: Time | None


class SystemStatus(Struct):
    version: str
    time: Time
    snapshot_version: Annotated[int, Meta(description="The current policy snapshot's.")]
    edges: list[EdgeStatus]
    redis: RedisStatus
    retention: RetentionStatus
