"""The shapes of the API key calls (`/v1/orgs/{org}/keys`, `/v1/keys/{key}…`)."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from control.api.schemas.common import Cidrs, ModelIds, RateLimit, SpendLimit, Text, Time
from control.api.validate import MAX_GRACE_SECONDS


class KeyCreate(Struct, forbid_unknown_fields=True):
    name: Text
    environment: Literal["live", "test"] | UnsetType = UNSET
    allowed_ips: Cidrs | UnsetType | None = UNSET
    models: ModelIds | UnsetType | None = UNSET
    rate_limit: RateLimit | UnsetType | None = UNSET
    spend_limit: SpendLimit | UnsetType | None = UNSET
    expires_at: Time | UnsetType | None = UNSET


class KeyChanges(Struct, forbid_unknown_fields=True):
    """What a customer may change of a key (the customer API): all but its status."""

    name: Text | UnsetType = UNSET
    allowed_ips: Cidrs | UnsetType | None = UNSET
    models: ModelIds | UnsetType | None = UNSET
    rate_limit: RateLimit | UnsetType | None = UNSET
    spend_limit: SpendLimit | UnsetType | None = UNSET
    expires_at: Time | UnsetType | None = UNSET


class KeyPatch(KeyChanges, forbid_unknown_fields=True):
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
    grace_seconds: Annotated[int, Meta(ge=0, le=MAX_GRACE_SECONDS)] | UnsetType = UNSET


class KeyPage(Struct):
    items: list[Key]
    next_cursor: str | None
