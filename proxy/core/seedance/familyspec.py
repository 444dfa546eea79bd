"""Checking a model family's JSON document (the shape config/models.toml describes, and what
`/v1/models` takes): every field, with the JSON path of the first one that is wrong."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from proxy.core.seedance.modelfamily import (
    CONTENT_TYPES,
    RULE_CONDITIONS,
    SERVICE_TIERS,
    CatalogError,
    ModelFamily,
    PriceRule,
    amount,
    best_rule,
)

FAMILY_FIELDS = {
    "description",
    "ids",
    "aliases",
    "resolutions",
    "default_resolution",
    "adaptive_ratio",
    "durations",
    "frames",
    "frames_per_second",
    "extra_frames",
    "audio",
    "service_tiers",
    "draft",
    "content",
    "reference_videos",
    "prices",
    "status",
    "retired_at",
    "replacement",
    "legacy_flags",
}
REQUIRED_FIELDS = ("ids", "resolutions", "default_resolution", "durations", "prices")
FAMILY_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}")
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_RATIO = re.compile(r"[1-9][0-9]?:[1-9][0-9]?")
_RESOLUTION = re.compile(r"[0-9]{3,4}p|[1-9]k")


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CatalogError(where, f"must be an integer from {low} to {high}.")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise CatalogError(where, "must be true or false.")
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CatalogError(where, "must be an object.")
    return value


def _strings(value: Any, where: str, pattern: re.Pattern[str] = _MODEL_ID) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(
        isinstance(item, str) and pattern.fullmatch(item) for item in value
    ):
        raise CatalogError(where, "must be a list of ids (letters, digits, . _ : -).")
    if len(set(value)) != len(value):
        raise CatalogError(where, "lists an id twice.")
    return tuple(value)


def _sizes(value: Any, where: str) -> dict[str, dict[str, tuple[int, int]]]:
    resolutions = _object(value, where)
    if not resolutions:
        raise CatalogError(where, "must name at least one resolution.")
    sizes: dict[str, dict[str, tuple[int, int]]] = {}
    for resolution, ratios in resolutions.items():
        at = f"{where}.{resolution}"
        if not _RESOLUTION.fullmatch(resolution):
            raise CatalogError(at, "a resolution is written like 480p, 1080p or 4k.")
        ratios = _object(ratios, at)
        if not ratios:
            raise CatalogError(at, "must give the pixel size of at least one ratio.")
        sizes[resolution] = {}
        for ratio, size in ratios.items():
            if not _RATIO.fullmatch(ratio):
                raise CatalogError(f"{at}.{ratio}", "a ratio is written like 16:9.")
            if not (
                isinstance(size, list)
                and len(size) == 2
                and all(not isinstance(n, bool) and isinstance(n, int) for n in size)
                and all(16 <= n <= 8192 for n in size)
            ):
                raise CatalogError(f"{at}.{ratio}", "must be [width, height] in pixels (16–8192).")
            sizes[resolution][ratio] = (size[0], size[1])
    return sizes


def _durations(value: Any, where: str) -> tuple[int, int, int, bool]:
    spec = _object(value, where)
    low = _int(spec.get("min"), f"{where}.min", 1, 600)
    high = _int(spec.get("max"), f"{where}.max", low, 600)
    default = _int(spec.get("default", low), f"{where}.default", -1, high)
    auto = _bool(spec.get("auto", False), f"{where}.auto")
    if not (low <= default or (auto and default == -1)):
        raise CatalogError(f"{where}.default", "must lie in [min, max], or be -1 with auto.")
    return low, high, default, auto


def _frames(value: Any, where: str) -> tuple[int, int, int] | None:
    if value is None:
        return None
    spec = _object(value, where)
    low = _int(spec.get("min"), f"{where}.min", 1, 100_000)
    high = _int(spec.get("max"), f"{where}.max", low, 100_000)
    step = _int(spec.get("step", 1), f"{where}.step", 1, 1000)
    return low, high, step


def _content(value: Any, where: str) -> dict[str, tuple[str, ...]]:
    spec = _object(value, where)
    if "text" not in spec and "image_url" not in spec:
        raise CatalogError(where, "must accept text or image_url items.")
    content: dict[str, tuple[str, ...]] = {}
    for kind, roles in spec.items():
        if kind not in CONTENT_TYPES:
            raise CatalogError(f"{where}.{kind}", f"is not one of {', '.join(CONTENT_TYPES)}.")
        content[kind] = _strings(roles, f"{where}.{kind}", re.compile(r"[a-z_]{1,40}"))
    return content


def _rules(value: Any, where: str, possible: dict[str, tuple[Any, ...]]) -> tuple[PriceRule, ...]:
    """The price rules; a condition must name a value the family can produce (a rule for
    `1080P` or for audio on a silent family would never apply, and price nothing)."""
    if not isinstance(value, list) or not value:
        raise CatalogError(where, "must be a non-empty list of price rules.")
    rules = []
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        item = _object(item, at)
        unknown = set(item) - {"usd_per_million_tokens", *RULE_CONDITIONS}
        if unknown:
            raise CatalogError(at, f"unknown key(s) {', '.join(sorted(unknown))}.")
        usd = amount(item.get("usd_per_million_tokens"), f"{at}.usd_per_million_tokens")
        conditions = {name: item[name] for name in RULE_CONDITIONS if name in item}
        for name, value in conditions.items():
            if name in ("audio", "video_input"):
                _bool(value, f"{at}.{name}")
            if value not in possible[name]:
                allowed = ", ".join(str(v).lower() for v in possible[name])
                raise CatalogError(f"{at}.{name}", f"must be one of {allowed} for this family.")
        rules.append(PriceRule(usd, conditions))
    return tuple(rules)


def _retired_at(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):  # a TOML date
        value = value.isoformat()
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise CatalogError(where, "must be a date (2026-11-24) or an RFC 3339 time.") from None
    else:
        raise CatalogError(where, "must be a date (2026-11-24) or an RFC 3339 time.")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _normalized(spec: dict[str, Any]) -> dict[str, Any]:
    """The document as it is stored and published: JSON types only (a TOML date as text)."""
    out = dict(spec)
    retired = out.get("retired_at")
    if isinstance(retired, date):
        out["retired_at"] = retired.isoformat()
    return out


def parse_family(name: str, spec: Any) -> ModelFamily:
    """Check one family's document; CatalogError naming the first field that is wrong."""
    if not isinstance(name, str) or not FAMILY_NAME.fullmatch(name):
        raise CatalogError("family", "a family name is 1–64 of a-z, 0-9, `.` and `-`.")
    spec = _object(spec, name)
    unknown = set(spec) - FAMILY_FIELDS
    if unknown:
        raise CatalogError(f"{name}.{sorted(unknown)[0]}", "is not a field of a model family.")
    for required in REQUIRED_FIELDS:
        if spec.get(required) is None:
            raise CatalogError(f"{name}.{required}", "is required.")
    description = spec.get("description", "")
    if not isinstance(description, str) or len(description) > 200:
        raise CatalogError(f"{name}.description", "must be text of at most 200 characters.")
    ids = _strings(spec["ids"], f"{name}.ids") + _strings(
        spec.get("aliases", []), f"{name}.aliases"
    )
    sizes = _sizes(spec["resolutions"], f"{name}.resolutions")
    default_resolution = spec["default_resolution"]
    if not isinstance(default_resolution, str) or default_resolution not in sizes:
        raise CatalogError(f"{name}.default_resolution", "must be one of its resolutions.")
    low, high, default, auto = _durations(spec["durations"], f"{name}.durations")
    audio = _object(spec.get("audio", {}), f"{name}.audio")
    audio_supported = _bool(audio.get("supported", False), f"{name}.audio.supported")
    audio_default = _bool(audio.get("default", False), f"{name}.audio.default")
    if audio_default and not audio_supported:
        raise CatalogError(f"{name}.audio.default", "cannot be true without audio support.")
    tiers = _strings(spec.get("service_tiers", ["default"]), f"{name}.service_tiers")
    if not tiers or not set(tiers) <= set(SERVICE_TIERS):
        raise CatalogError(f"{name}.service_tiers", f"must be among {', '.join(SERVICE_TIERS)}.")
    content = _content(
        spec.get("content", {"text": [], "image_url": ["first_frame"]}), f"{name}.content"
    )
    refs = _object(spec.get("reference_videos", {}), f"{name}.reference_videos")
    status = spec.get("status", "active")
    if status not in ("active", "retired"):
        raise CatalogError(f"{name}.status", "must be active or retired.")
    replacement = spec.get("replacement")
    if replacement is not None and (
        not isinstance(replacement, str) or not _MODEL_ID.fullmatch(replacement)
    ):
        raise CatalogError(f"{name}.replacement", "must be a model id.")
    family = ModelFamily(
        name=name,
        spec=_normalized(spec),
        ids=ids,
        sizes=sizes,
        default_resolution=default_resolution,
        adaptive_ratio=_bool(spec.get("adaptive_ratio", True), f"{name}.adaptive_ratio"),
        min_duration=low,
        max_duration=high,
        default_duration=default,
        auto_duration=auto,
        frames=_frames(spec.get("frames"), f"{name}.frames"),
        fps=_int(spec.get("frames_per_second", 24), f"{name}.frames_per_second", 1, 120),
        extra_frames=_int(spec.get("extra_frames", 1), f"{name}.extra_frames", 0, 10),
        audio_supported=audio_supported,
        audio_default=audio_default,
        service_tiers=tiers,
        draft=_bool(spec.get("draft", False), f"{name}.draft"),
        legacy_flags=_bool(spec.get("legacy_flags", False), f"{name}.legacy_flags"),
        content=content,
        max_reference_videos=_int(
            refs.get("max_count", 0), f"{name}.reference_videos.max_count", 0, 100
        ),
        max_reference_video_seconds=_int(
            refs.get("max_total_seconds", 0), f"{name}.reference_videos.max_total_seconds", 0, 3600
        ),
        min_tokens_with_video=_int(
            refs.get("min_tokens", 0), f"{name}.reference_videos.min_tokens", 0, 10**9
        ),
        prices=_rules(
            spec["prices"],
            f"{name}.prices",
            {
                "service_tier": tiers,
                "audio": (True, False) if audio_supported else (False,),
                "resolution": tuple(sizes),
                "video_input": (False, True) if "video_url" in content else (False,),
            },
        ),
        status=status,
        retired_at=_retired_at(spec.get("retired_at"), f"{name}.retired_at"),
        replacement=replacement,
    )
    if "video_url" in content and family.max_reference_videos == 0:
        raise CatalogError(
            f"{name}.reference_videos.max_count", "must be at least 1 when video_url is accepted."
        )
    for combination in family.combinations():
        if best_rule(family.prices, combination) is None:
            described = ", ".join(f"{key}={value}" for key, value in combination.items())
            raise CatalogError(
                f"{name}.prices",
                f"no single most specific rule prices {described}: add one for it.",
            )
    return family
