"""The shapes of the model catalog calls (`/v1/models…`).

The family document is checked by proxy/core/seedance/familyspec.py, which is stricter than these
shapes (pixel sizes are pairs, ranges are ordered, every combination has one price) and says
which field is wrong.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

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
