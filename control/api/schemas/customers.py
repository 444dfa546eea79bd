"""The shapes of the customer API's own calls (`/v1/me`, `/v1/me/settings`, `/v1/me/close`);
its other calls answer the admin API's shapes for the customer's org."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from control.api.schemas.common import Time


class MeUser(Struct):
    id: Annotated[str, Meta(description="The Clerk user id.", examples=["user_2abc"])]
    name: str | None
    email: str | None


class MeOrg(Struct):
    id: str
    name: str
    external_id: Annotated[str | None, Meta(description="The Clerk organization id.")]
    status: Literal["active", "suspended", "closed"]
    created_at: Time


class Me(Struct):
    user: MeUser
    org: MeOrg
    role: Literal["admin", "member"]


class Settings(Struct):
    video_retention_days: int
    video_retention_min_days: int
    video_retention_max_days: int
    analytics_opt_out: Annotated[bool, Meta(description="The signed-in person's own choice.")]


class SettingsPatch(Struct, forbid_unknown_fields=True):
    video_retention_days: (
        Annotated[
            int, Meta(ge=1, le=3650, description="Admins; within the org's min and max days.")
        ]
        | UnsetType
    ) = UNSET
    analytics_opt_out: bool | UnsetType = UNSET


class CloseConfirm(Struct, forbid_unknown_fields=True):
    confirm: Annotated[str, Meta(description="The org's id: closing is for good.")]
