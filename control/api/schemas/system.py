"""The shapes of the system calls: liveness, readiness and `GET /v1/system`."""

from __future__ import annotations

from typing import Annotated

from msgspec import UNSET, Meta, Struct, UnsetType

from control.api.schemas.common import Time


class Health(Struct):
    status: str


class Ready(Struct):
    status: str
    policy_version: int | UnsetType = UNSET


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


class UnbilledTask(Struct):
    """An upstream task no edge answered the create of, which fits no one hold's create."""

    task_id: str
    reason: Annotated[
        str, Meta(description="`unmatched`: no hold fits; `ambiguous`: holds of several fit.")
    ]
    model: str | None
    status: Annotated[str | None, Meta(description="The task's status when it was found.")]
    created_at: Time | None
    found_at: Time


class OrphanStatus(Struct):
    """Tasks the upstream made for creates no edge answered (an edge died in between), found by
    listing the upstream's recent tasks before stale credit holds are released."""

    charged: Annotated[int, Meta(description="Found and charged to the org whose hold fit.")]
    unbilled: Annotated[int, Meta(description="Found and billed to no one (see the audit log).")]
    newest_unbilled: list[UnbilledTask]
    scanned_until: Annotated[
        Time | None, Meta(description="The upstream's tasks created before this are scanned.")
    ]
    checked_at: Time | None
    error: Annotated[
        str | None,
        Meta(description="Why the last scan could not list the upstream, if it could not."),
    ]


class LogPartitions(Struct):
    """One table of the request log, partitioned by day (PostgreSQL)."""

    table: Annotated[str, Meta(description="`usage` or `security_events`.")]
    days: Annotated[int, Meta(description="Its day partitions, one a UTC day.")]
    oldest_day: Annotated[str | None, Meta(description="YYYY-MM-DD (UTC).")]
    newest_day: Annotated[str | None, Meta(description="YYYY-MM-DD (UTC): tomorrow, usually.")]
    default_rows: Annotated[
        int,
        Meta(
            description="Rows in its default partition: times no day was made for (a record "
            "that came after its day was dropped, a day a lock kept from being made, moved "
            "when it is made). Many of them say days are not being made."
        ),
    ]


class RequestLogStatus(Struct):
    backend: Annotated[
        str, Meta(description="`sqlite` (a file of its own) or `postgresql` (its tables).")
    ]
    partitions: Annotated[
        list[LogPartitions] | None,
        Meta(description="On PostgreSQL, each table's day partitions; null on SQLite."),
    ]


class SystemStatus(Struct):
    version: str
    time: Time
    snapshot_version: Annotated[int, Meta(description="The current policy snapshot's.")]
    edges: list[EdgeStatus]
    redis: RedisStatus
    retention: RetentionStatus
    orphans: OrphanStatus
    request_log: RequestLogStatus
