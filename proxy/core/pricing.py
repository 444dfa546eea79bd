"""What a create can cost, from the catalog: the most tokens it can produce, the unit price of
its combination (tier, audio, resolution, video input), and the hold to reserve. Integer and
exact rational arithmetic only; amounts are rounded up.

Tokens are the upstream's: (input video seconds + output seconds) × width × height × fps / 1024,
with output frames = fps × duration + extra_frames (or `frames`). Before the task runs nothing
says how long its reference videos are, so they count at the family's longest total."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

from proxy.core.seedance.catalog import Catalog, ModelFamily
from proxy.core.seedance.modelfamily import AUTO_DURATION

TOKENS_PER_PRICE_UNIT = 1_000_000  # prices are per million tokens


class PricedCreate(Protocol):
    """What a price reads of a create (the edge's `CreateRequest`, proxy/seedance/creates.py):
    the parameters it sets, None where the family's default applies."""

    @property
    def resolution(self) -> str | None: ...
    @property
    def ratio(self) -> str | None: ...
    @property
    def duration(self) -> int | None: ...  # AUTO_DURATION: the model chooses
    @property
    def frames(self) -> int | None: ...
    @property
    def service_tier(self) -> str: ...
    @property
    def generate_audio(self) -> bool | None: ...
    @property
    def reference_videos(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Quote:
    """The price of one create: what is held, and the unit price its task will be charged at."""

    family: str
    resolution: str
    service_tier: str
    audio: bool
    video_input: bool
    tokens: int  # the most the create can produce
    unit_price: Fraction  # micro-credits per million tokens, markup included
    amount: int  # micro-credits: the most the create can cost


def output_frames(family: ModelFamily, create: PricedCreate) -> int:
    """Frames the create can produce at most (no duration: the family's default; auto: the
    longest)."""
    if create.frames is not None:
        return create.frames
    duration = family.default_duration if create.duration is None else create.duration
    if duration == AUTO_DURATION:
        duration = family.max_duration
    return family.fps * duration + family.extra_frames


def max_tokens(family: ModelFamily, create: PricedCreate) -> int:
    resolution = family.default_resolution if create.resolution is None else create.resolution
    width, height = family.size(resolution, create.ratio)
    frames = output_frames(family, create)
    if create.reference_videos:
        frames += family.fps * family.max_reference_video_seconds
    tokens = width * height * frames // 1024
    if create.reference_videos:
        tokens = max(tokens, family.min_tokens_with_video)
    return tokens


def charge(unit_price: Fraction, tokens: int) -> int:
    """Micro-credits for `tokens` at `unit_price` (per million tokens), rounded up."""
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
        raise ValueError("tokens must be a non-negative integer")
    return math.ceil(tokens * unit_price / TOKENS_PER_PRICE_UNIT)


def quote(catalog: Catalog, family: ModelFamily, create: PricedCreate) -> Quote:
    """The hold for a create that check_family accepted."""
    resolution = family.default_resolution if create.resolution is None else create.resolution
    audio = family.audio_default if create.generate_audio is None else create.generate_audio
    audio = audio and family.audio_supported
    video_input = create.reference_videos > 0
    unit = catalog.unit_price(family, create.service_tier, audio, resolution, video_input)
    tokens = max_tokens(family, create)
    return Quote(
        family=family.name,
        resolution=resolution,
        service_tier=create.service_tier,
        audio=audio,
        video_input=video_input,
        tokens=tokens,
        unit_price=unit,
        amount=charge(unit, tokens),
    )


def parse_price(text: str) -> Fraction:
    value = Fraction(text)
    if value < 0:
        raise ValueError("a unit price is never negative")
    return value
