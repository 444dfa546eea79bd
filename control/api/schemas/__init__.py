"""The admin API's shapes as msgspec Structs: request bodies, responses, the error envelope.

The OpenAPI document (control/api/openapi.py) is generated from them, and the tests check every
answer against it (tests/unit/control/test_openapi.py, and schemathesis against a live control
plane). Limits come from the constants the validators use (control/api/validate.py). A body
schema is never stricter than its validator: whatever it calls invalid is refused with a 400,
and the validator may refuse more (an address that is not an IP, a blank name) with its own
message.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType
from starlette.requests import Request

from control.api.validate import MAX_AMOUNT, MAX_LIMIT, NO_CONTROL_PATTERN
from control.http import ApiError, bad_request, json_body

Text = Annotated[str, Meta(max_length=200, pattern=NO_CONTROL_PATTERN)]
LongText = Annotated[str, Meta(max_length=500, pattern=NO_CONTROL_PATTERN)]
Email = Annotated[
    str, Meta(max_length=320, pattern=NO_CONTROL_PATTERN, examples=["ops@acme.example"])
]
Time = Annotated[
    str,
    Meta(
        description="RFC 3339, UTC (`Z`)",
        examples=["2026-11-29T18:00:00.000Z"],
        extra_json_schema={"format": "date-time"},
    ),
]
Limit = Annotated[int, Meta(ge=1, le=MAX_LIMIT)]
Amount = Annotated[int, Meta(ge=0, le=MAX_AMOUNT, description="micro-credits")]
Grant = Annotated[int, Meta(ge=1, le=MAX_AMOUNT, description="micro-credits")]
Cidrs = Annotated[
    list[Annotated[str, Meta(max_length=64)]],
    Meta(max_length=1000, examples=[["203.0.113.0/24", "2001:db8::/32"]]),
]
ModelIds = list[Annotated[str, Meta(pattern=NO_CONTROL_PATTERN)]]


class ErrorDetail(Struct):
    code: Annotated[str, Meta(examples=["InvalidParameter"])]
    message: Annotated[str, Meta(examples=["`name` must be a non-empty string."])]


class Error(Struct):
    """Every error: `{"error": {"code", "message"}}`."""

    error: ErrorDetail


class RateLimit(Struct, forbid_unknown_fields=True):
    requests_per_minute: Limit | UnsetType | None = UNSET
    requests_per_day: Limit | UnsetType | None = UNSET
    concurrent_tasks: Limit | UnsetType | None = UNSET


class SpendLimit(Struct, forbid_unknown_fields=True):
    amount: Amount
    period: Literal["day", "month"] = "month"


# --- orgs ------------------------------------------------------------------------------------


class OrgCreate(Struct, forbid_unknown_fields=True):
    name: Text
    email: Email
    allowed_ips: Cidrs | UnsetType | None = UNSET
    rate_limit: RateLimit | UnsetType | None = UNSET
    spend_limit: SpendLimit | UnsetType | None = UNSET
    video_retention_days: Annotated[int, Meta(ge=1, le=3650)] | UnsetType = UNSET
    contact_name: Text | UnsetType = UNSET
    processing_objection: bool | UnsetType = UNSET


class OrgPatch(Struct, forbid_unknown_fields=True):
    name: Text | UnsetType = UNSET
    email: Email | UnsetType = UNSET
    allowed_ips: Cidrs | UnsetType | None = UNSET
    rate_limit: RateLimit | UnsetType | None = UNSET
    spend_limit: SpendLimit | UnsetType | None = UNSET
    video_retention_days: Annotated[int, Meta(ge=1, le=3650)] | UnsetType = UNSET
    contact_name: Text | UnsetType = UNSET
    processing_objection: bool | UnsetType = UNSET
    status: Literal["active", "suspended"] | UnsetType = UNSET


class Org(Struct):
    id: Annotated[str, Meta(examples=["org_5f2c9a0b1d3e4f67"])]
    name: str
    email: str
    status: Literal["active", "suspended", "closed"]
    allowed_ips: list[str]
    rate_limit: RateLimit
    spend_limit: SpendLimit | None
    video_retention_days: int
    contact_name: str | None
    processing_objection: bool
    created_at: Time
    updated_at: Time
    closed_at: Time | None


class InFlight(Struct):
    cancelled: list[str]
    left_running: list[str]


class ClosedOrg(Org):
    tasks: InFlight


# --- keys ------------------------------------------------------------------------------------


class KeyCreate(Struct, forbid_unknown_fields=True):
    name: Text
    environment: Literal["live", "test"] | UnsetType = UNSET
    allowed_ips: Cidrs | UnsetType | None = UNSET
    models: ModelIds | UnsetType | None = UNSET
    rate_limit: RateLimit | UnsetType | None = UNSET
    spend_limit: SpendLimit | UnsetType | None = UNSET
    expires_at: Time | UnsetType | None = UNSET


class KeyPatch(Struct, forbid_unknown_fields=True):
    name: Text | UnsetType = UNSET
    allowed_ips: Cidrs | UnsetType | None = UNSET
    models: ModelIds | UnsetType | None = UNSET
    rate_limit: RateLimit | UnsetType | None = UNSET
    spend_limit: SpendLimit | UnsetType | None = UNSET
    expires_at: Time | UnsetType | None = UNSET
    status: Literal["active", "suspended"] | UnsetType = UNSET


class Key(Struct):
    id: Annotated[str, Meta(examples=["Q7m2xR9vLk4pZ8wN"])]
    org_id: str
    name: str
    environment: Literal["live", "test"]
    prefix: str
    status: Literal["active", "suspended", "revoked"]
    allowed_ips: list[str]
    models: list[str] | None
    rate_limit: RateLimit
    spend_limit: SpendLimit | None
    expires_at: Time | None
    created_at: Time
    updated_at: Time
    revoked_at: Time | None
    rotated_at: Time | None
    previous_secret_valid_until: Time | None


class KeyWithSecret(Key):
    key: Annotated[str, Meta(description="The secret: shown this once only.")]


class Rotate(Struct, forbid_unknown_fields=True):
    grace_seconds: Annotated[int, Meta(ge=0, le=7 * 86400)] | UnsetType = UNSET


# --- credits ---------------------------------------------------------------------------------


class CreditGrant(Struct, forbid_unknown_fields=True):
    """A grant (`amount`, `reason`), or with `task_id` a refund of that task's charge."""

    amount: Grant | UnsetType = UNSET
    reason: LongText | UnsetType = UNSET
    task_id: Annotated[str, Meta(max_length=128, pattern=NO_CONTROL_PATTERN)] | UnsetType = UNSET


class Balance(Struct):
    available: int
    reserved: int


class Granted(Struct):
    id: int
    balance: Balance
    amount: int | UnsetType = UNSET
    kind: Literal["refund"] | UnsetType = UNSET


class LedgerEntry(Struct):
    id: int
    kind: str
    amount: int
    key_id: str | None
    task_id: str | None
    reason: str | None
    actor: str | None
    created_at: Time


class Reservation(Struct):
    id: str
    key_id: str
    amount: int
    model: str
    tier: str
    generate_audio: bool | None
    task_id: str | None
    status: str
    callback_webhook: str | None
    created_at: Time
    settled_at: Time | None


class Ledger(Struct):
    items: list[LedgerEntry]
    next_cursor: str | None
    reservations: list[Reservation]


class Task(Struct):
    id: str
    key_id: str
    model: str | None
    service_tier: str | None
    status: str
    reserved: int
    charged: int | None
    tokens: int | None
    callback_webhook: str | None
    created_at: Time
    updated_at: Time
    finished_at: Time | None
    video_deleted_at: Time | None


# --- logs ------------------------------------------------------------------------------------


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


# --- webhooks --------------------------------------------------------------------------------

Url = Annotated[str, Meta(max_length=2048, examples=["https://hooks.acme.example/nextapi"])]
Events = list[str]


class WebhookCreate(Struct, forbid_unknown_fields=True):
    url: Url
    events: Events | UnsetType | None = UNSET


class WebhookPatch(Struct, forbid_unknown_fields=True):
    url: Url | UnsetType = UNSET
    events: Events | UnsetType | None = UNSET
    status: Literal["enabled", "disabled"] | UnsetType = UNSET


class Webhook(Struct):
    id: str
    org_id: str
    url: str
    events: list[str] | None
    status: str
    disabled_reason: str | None
    failing_since: Time | None
    previous_secret_valid_until: Time | None
    created_at: Time
    updated_at: Time


class WebhookWithSecret(Webhook):
    secret: Annotated[str, Meta(description="`whsec_…`: shown this once only.")]


class WebhookRotate(Struct, forbid_unknown_fields=True):
    grace_seconds: Annotated[int, Meta(ge=0, le=7 * 86400)] | UnsetType = UNSET


class Deleted(Struct):
    id: str
    deleted: bool


class Delivery(Struct):
    event_id: str
    type: str
    task_id: str | None
    attempted_at: Time
    status: int | None
    latency_ms: float | None
    error: str | None
    event_status: str
    event_attempts: Annotated[int, Meta(description="Attempts at the event so far, in all.")]


class Redelivered(Struct):
    id: str
    status: Literal["pending"]


# --- admin tokens and the system ---------------------------------------------------------------


class AdminTokenCreate(Struct, forbid_unknown_fields=True):
    name: Text
    scopes: Annotated[list[Literal["admin", "read", "edge"]], Meta(min_length=1)] | UnsetType = (
        UNSET
    )


class AdminToken(Struct):
    id: str
    name: str
    scopes: list[str]
    source: Literal["env", "api"]
    created_at: Time
    last_used_at: Time | None
    revoked_at: Time | None


class AdminTokenCreated(Struct):
    id: str
    name: str
    scopes: list[str]
    created_at: Time
    token: Annotated[str, Meta(description="The token: shown this once only.")]


class Revoked(Struct):
    id: str
    revoked: bool


class Health(Struct):
    status: str


class Ready(Struct):
    status: str
    policy_version: int | UnsetType = UNSET


# --- pages of lists: `{items, next_cursor}` -----------------------------------------------------


class OrgPage(Struct):
    items: list[Org]
    next_cursor: str | None


class KeyPage(Struct):
    items: list[Key]
    next_cursor: str | None


class RequestPage(Struct):
    items: list[RequestRecord]
    next_cursor: str | None


class TaskPage(Struct):
    items: list[Task]
    next_cursor: str | None


class AuditPage(Struct):
    items: list[AuditEntry]
    next_cursor: str | None


class SecurityEventPage(Struct):
    items: list[SecurityEvent]
    next_cursor: str | None


class WebhookPage(Struct):
    items: list[Webhook]
    next_cursor: str | None


class DeliveryPage(Struct):
    items: list[Delivery]
    next_cursor: str | None


class AdminTokenPage(Struct):
    items: list[AdminToken]
    next_cursor: str | None


# --- bodies in -----------------------------------------------------------------------------------


async def body_of(request: Request, shape: type[Struct]) -> dict[str, Any]:
    """The request's JSON object with only the fields `shape` declares and every field it
    requires, in the messages clients know ("Unknown fields: …", "`name` is required."); the
    values are then checked by the validators (control/api/validate.py)."""
    body = await json_body(request)
    fields = msgspec.structs.fields(shape)
    unknown = set(body) - {f.encode_name for f in fields}
    if unknown:
        raise bad_request(f"Unknown fields: {', '.join(sorted(unknown))}.")
    for f in fields:
        if f.required and f.encode_name not in body:
            raise ApiError(400, "MissingParameter", f"`{f.encode_name}` is required.")
    return body


# --- the model catalog -------------------------------------------------------------------------
# The family document is checked by proxy/core/seedance/familyspec.py, which is stricter than these
# shapes (pixel sizes are pairs, ranges are ordered, every combination has one price) and says
# which field is wrong.

Usd = Annotated[
    str | int,
    Meta(description='USD per million tokens: a decimal string such as `"2.5"`, never a float'),
]


ModelId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
Size = Annotated[list[Annotated[int, Meta(ge=16, le=8192)]], Meta(min_length=2, max_length=2)]
Seconds = Annotated[int, Meta(ge=-1, le=600)]


class PriceRule(Struct, forbid_unknown_fields=True):
    usd_per_million_tokens: Usd
    service_tier: str | UnsetType = UNSET
    audio: bool | UnsetType = UNSET
    resolution: str | UnsetType = UNSET
    video_input: bool | UnsetType = UNSET


class Durations(Struct, forbid_unknown_fields=True):
    min: Annotated[int, Meta(ge=1, le=600)]
    max: Annotated[int, Meta(ge=1, le=600)]
    default: Seconds | UnsetType = UNSET
    auto: bool | UnsetType = UNSET


class Frames(Struct, forbid_unknown_fields=True):
    min: int
    max: int
    step: int | UnsetType = UNSET


class Audio(Struct, forbid_unknown_fields=True):
    supported: bool | UnsetType = UNSET
    default: bool | UnsetType = UNSET


class ReferenceVideos(Struct, forbid_unknown_fields=True):
    max_count: int | UnsetType = UNSET
    max_total_seconds: int | UnsetType = UNSET
    min_tokens: int | UnsetType = UNSET


class ModelFamilyPatch(Struct, forbid_unknown_fields=True):
    """Any fields of a family; each replaces the stored one. (`family`, `retired`,
    `created_at` and `updated_at` are GET's and are ignored, so a GET can be sent back.)"""

    description: str | UnsetType = UNSET
    ids: list[ModelId] | UnsetType = UNSET
    aliases: list[ModelId] | UnsetType = UNSET
    resolutions: dict[str, dict[str, Size]] | UnsetType = UNSET
    default_resolution: str | UnsetType = UNSET
    adaptive_ratio: bool | UnsetType = UNSET
    durations: Durations | UnsetType = UNSET
    frames: Frames | UnsetType | None = UNSET
    frames_per_second: Annotated[int, Meta(ge=1, le=120)] | UnsetType = UNSET
    extra_frames: Annotated[int, Meta(ge=0, le=10)] | UnsetType = UNSET
    audio: Audio | UnsetType = UNSET
    service_tiers: list[str] | UnsetType = UNSET
    draft: bool | UnsetType = UNSET
    legacy_flags: bool | UnsetType = UNSET
    content: dict[str, list[str]] | UnsetType = UNSET
    reference_videos: ReferenceVideos | UnsetType = UNSET
    prices: Annotated[list[PriceRule], Meta(min_length=1)] | UnsetType = UNSET
    status: Literal["active", "retired"] | UnsetType = UNSET
    retired_at: str | UnsetType | None = UNSET
    replacement: str | UnsetType | None = UNSET
    family: str | UnsetType = UNSET
    retired: bool | UnsetType = UNSET
    created_at: str | UnsetType | None = UNSET
    updated_at: str | UnsetType | None = UNSET


class ModelFamilyPut(ModelFamilyPatch, forbid_unknown_fields=True, kw_only=True):
    """A whole family: these five fields are required, the others have defaults."""

    ids: list[ModelId]
    resolutions: dict[str, dict[str, Size]]
    default_resolution: str
    durations: Durations
    prices: Annotated[list[PriceRule], Meta(min_length=1)]


class ModelFamily(ModelFamilyPatch, kw_only=True):
    family: str
    retired: bool


class ModelCatalog(Struct):
    markup_percent: Annotated[str, Meta(description="exact: `n` or `n/d`")]
    credits_per_usd: Annotated[str, Meta(description="exact: `n` or `n/d`")]
    items: list[ModelFamily]


class ModelDeleted(Struct):
    family: str
    deleted: bool
