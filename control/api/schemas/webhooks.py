"""The shapes of the webhook endpoint calls (`/v1/orgs/{org}/webhooks…`) and their deliveries."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from control.api.schemas.common import Time
from control.api.validate import MAX_GRACE_SECONDS

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
    grace_seconds: Annotated[int, Meta(ge=0, le=MAX_GRACE_SECONDS)] | UnsetType = UNSET


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


class WebhookPage(Struct):
    items: list[Webhook]
    next_cursor: str | None


class DeliveryPage(Struct):
    items: list[Delivery]
    next_cursor: str | None
