"""The shapes of the admin token calls (`/v1/admin/tokens…`)."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from control.api.schemas.common import Text, Time


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


class AdminTokenPage(Struct):
    items: list[AdminToken]
    next_cursor: str | None
