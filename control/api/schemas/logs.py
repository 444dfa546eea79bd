"""The shapes of what the control plane recorded: the request log, the audit log, security events
and usage aggregates."""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, Struct, UnsetType

from control.api.schemas.common import Time


class RequestRecord(Struct):
    id: str
    ts: Time
    org_id: str | None
    key_id: str | None
    method: str
    route: str | None
    status: int
    latency_ms: float | None
    upstream_latency_ms: float | None
    bytes_in: int
    bytes_out: int
    credits: int
    model: str | None
    task_id: str | None
    limited_by: str | None  # `key` or `org`: the customer's own limit refused it (429)


class AuditEntry(Struct):
    id: int
    ts: Time
    actor: str
    action: str
    target: str | None
    detail: dict[str, Any]


class SecurityEvent(Struct):
    id: str
    ts: Time
    client_ip: str | None
    key_id: str | None
    org_id: str | None
    reason: str
    status: int
    route: str | None


class UsageRow(Struct):
    """One group of a usage aggregate; only the grouped dimensions are present."""

    requests: int
    errors_4xx: int
    errors_5xx: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    latency_avg_ms: float | None
    credits_reserved: int
    credits_charged: int
    tokens: int
    tasks_created: int
    tasks_succeeded: int
    bytes_in: int
    bytes_out: int
    start: Time | UnsetType = UNSET
    end: Time | UnsetType = UNSET
    org_id: str | UnsetType | None = UNSET
    key_id: str | UnsetType | None = UNSET
    endpoint: str | UnsetType | None = UNSET
    status: int | UnsetType = UNSET
    model: str | UnsetType | None = UNSET


class Usage(Struct, rename={"from_": "from"}):
    from_: Time
    to: Time
    group_by: list[str]
    tz: str
    items: list[UsageRow]
    next_cursor: None


class RequestPage(Struct):
    items: list[RequestRecord]
    next_cursor: str | None


class AuditPage(Struct):
    items: list[AuditEntry]
    next_cursor: str | None


class SecurityEventPage(Struct):
    items: list[SecurityEvent]
    next_cursor: str | None
