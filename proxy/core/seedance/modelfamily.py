"""A Seedance model family as the edge uses it: what it accepts (resolutions and their pixel
sizes, durations, frames, audio, tiers, content) and what each combination of service tier,
audio, resolution and video input costs. Built from a family's JSON document by
proxy/core/seedance/familyspec.py; gathered into the catalog by proxy/core/seedance/catalog.py.

Prices are exact (decimal strings into Fractions, never floats). A family's `prices` is a list
of rules; the most specific rule that matches a combination gives its price, and every
combination the family can produce must have exactly one such rule (checked on every change)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import product
from typing import Any

CONTENT_TYPES = ("text", "image_url", "video_url", "audio_url", "draft_task")
SERVICE_TIERS = ("default", "flex")
AUTO_DURATION = -1  # a create's duration that lets the model choose
RULE_CONDITIONS = ("service_tier", "audio", "resolution", "video_input")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?|[0-9]+/[1-9][0-9]*")  # "2.5", or exact "5/2"


class CatalogError(ValueError):
    """A catalog document that cannot be used; `param` is the JSON path of the culprit."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


@dataclass(frozen=True, slots=True)
class PriceRule:
    usd_per_million_tokens: Fraction
    conditions: dict[str, Any]  # a subset of RULE_CONDITIONS -> the value it requires

    def matches(self, combination: dict[str, Any]) -> bool:
        return all(combination[name] == value for name, value in self.conditions.items())


@dataclass(frozen=True, slots=True)
class ModelFamily:
    name: str
    spec: dict[str, Any] = field(repr=False)  # the document as stored and published
    ids: tuple[str, ...]
    sizes: dict[str, dict[str, tuple[int, int]]]  # resolution -> ratio -> (width, height)
    default_resolution: str
    adaptive_ratio: bool
    min_duration: int
    max_duration: int
    default_duration: int
    auto_duration: bool  # duration -1: the model chooses (reserved as the longest)
    frames: tuple[int, int, int] | None  # (min, max, step) when `frames` may be given
    fps: int
    extra_frames: int  # frames = fps × duration + extra_frames
    audio_supported: bool
    audio_default: bool
    service_tiers: tuple[str, ...]
    draft: bool
    legacy_flags: bool  # `--rs 720p --dur 5` in the prompt count (1.x); otherwise they are text
    content: dict[str, tuple[str, ...]]  # content item type -> the roles it may take
    max_reference_videos: int
    max_reference_video_seconds: int
    min_tokens_with_video: int
    prices: tuple[PriceRule, ...]
    status: str  # active | retired
    retired_at: float | None  # unix seconds; None with status retired: retired now
    replacement: str | None

    def retired(self, now: float) -> bool:
        if self.status != "retired":
            return False
        return self.retired_at is None or now >= self.retired_at

    def ratios(self, resolution: str) -> tuple[str, ...]:
        return tuple(self.sizes.get(resolution, ()))

    def size(self, resolution: str, ratio: str | None) -> tuple[int, int]:
        """Pixel size; `adaptive` or no ratio: the largest area at that resolution (the model
        chooses then, and a reservation must cover whatever it chooses)."""
        by_ratio = self.sizes[resolution]
        if ratio in by_ratio:
            return by_ratio[ratio]
        return max(by_ratio.values(), key=lambda size: size[0] * size[1])

    def usd_per_million(
        self, service_tier: str, audio: bool, resolution: str, video_input: bool
    ) -> Fraction:
        combination = {
            "service_tier": service_tier,
            "audio": audio,
            "resolution": resolution,
            "video_input": video_input,
        }
        rule = best_rule(self.prices, combination)
        if rule is None:
            raise KeyError(combination)
        return rule.usd_per_million_tokens

    def combinations(self) -> list[dict[str, Any]]:
        """Every (tier, audio, resolution, video input) a create of this family can produce."""
        audio = (True, False) if self.audio_supported else (False,)
        video = (False, True) if "video_url" in self.content else (False,)
        return [
            {"service_tier": t, "audio": a, "resolution": r, "video_input": v}
            for t, a, r, v in product(self.service_tiers, audio, self.sizes, video)
        ]


def best_rule(rules: tuple[PriceRule, ...], combination: dict[str, Any]) -> PriceRule | None:
    matching = [rule for rule in rules if rule.matches(combination)]
    if not matching:
        return None
    most = max(len(rule.conditions) for rule in matching)
    best = [rule for rule in matching if len(rule.conditions) == most]
    return best[0] if len(best) == 1 else None


def amount(value: Any, where: str) -> Fraction:
    """An exact non-negative amount from an integer or a decimal string (never a float)."""
    if isinstance(value, bool):
        raise CatalogError(where, "must be an integer or a decimal string, not a boolean.")
    if isinstance(value, int):
        if value < 0:
            raise CatalogError(where, "must not be negative.")
        return Fraction(value)
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        return Fraction(value.strip())
    if isinstance(value, float):
        raise CatalogError(where, f'must be a decimal string such as "{value}", not a float.')
    raise CatalogError(where, "must be a non-negative integer or decimal string.")


def fraction_text(value: Fraction) -> str:
    """An exact amount as text: `n` or `n/d` (read back by `amount`)."""
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator}/{value.denominator}"
