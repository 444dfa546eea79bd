"""The shapes of the org calls (`/v1/orgs…`)."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from control.api.schemas.common import Cidrs, Email, RateLimit, SpendLimit, Text, Time

RetentionBound = Annotated[int, Meta(ge=1, le=3650)]


class OrgCreate(Struct, forbid_unknown_fields=True):
    name: Text
    email: Email
    allowed_ips: Cidrs | UnsetType | None = UNSET
    rate_limit: RateLimit | UnsetType | None = UNSET
    spend_limit: SpendLimit | UnsetType | None = UNSET
    video_retention_days: Annotated[int, Meta(ge=1, le=3650)] | UnsetType = UNSET
    video_retention_min_days: RetentionBound | UnsetType = UNSET
    video_retention_max_days: RetentionBound | UnsetType = UNSET
    contact_name: Text | UnsetType = UNSET
    processing_objection: bool | UnsetType = UNSET


class OrgPatch(Struct, forbid_unknown_fields=True):
    name: Text | UnsetType = UNSET
    email: Email | UnsetType = UNSET
    allowed_ips: Cidrs | UnsetType | None = UNSET
    rate_limit: RateLimit | UnsetType | None = UNSET
    spend_limit: SpendLimit | UnsetType | None = UNSET
    video_retention_days: Annotated[int, Meta(ge=1, le=3650)] | UnsetType = UNSET
    video_retention_min_days: RetentionBound | UnsetType = UNSET
    video_retention_max_days: RetentionBound | UnsetType = UNSET
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
    video_retention_min_days: Annotated[
        int, Meta(description="The least retention the org's admins may choose themselves.")
    ]
    video_retention_max_days: Annotated[
        int, Meta(description="The most retention the org's admins may choose themselves.")
    ]
    contact_name: str | None
    processing_objection: bool
    external_id: Annotated[
        str | None, Meta(description="The Clerk organization it is, if Clerk created it.")
    ]
    created_at: Time
    updated_at: Time
    closed_at: Time | None


class InFlight(Struct):
    cancelled: list[str]
    left_running: list[str]


class ClosedOrg(Org):
    tasks: InFlight


class OrgPage(Struct):
    items: list[Org]
    next_cursor: str | None
