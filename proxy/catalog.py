"""The Seedance model catalog: what each model family accepts and what it costs, as data.

Seedance changes every few months, so nothing about a model is code: each family is a JSON
document (the shape `FAMILY_FIELDS` lists, seeded from config/models.toml, edited through the
control plane's `/v1/models`, and pushed to every edge in the policy snapshot). This module
checks such a document and answers the questions the edge asks of it: which family a model id
belongs to, whether it is retired, the pixel size of a resolution and ratio, and the price of
one combination of service tier, audio, resolution and video input.

Prices are exact (decimal strings into Fractions, never floats). A family's `prices` is a list
of rules; the most specific rule that matches a combination gives its price, and every
combination the family can produce must have exactly one such rule (checked on every change)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from fractions import Fraction
from itertools import product
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "config" / "models.toml"
MICRO = 1_000_000  # micro-credits per credit
CONTENT_TYPES = ("text", "image_url", "video_url", "audio_url", "draft_task")
SERVICE_TIERS = ("default", "flex")
RULE_CONDITIONS = ("service_tier", "audio", "resolution", "video_input")
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
}
REQUIRED_FIELDS = ("ids", "resolutions", "default_resolution", "durations", "prices")
FAMILY_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}")
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_RATIO = re.compile(r"[1-9][0-9]?:[1-9][0-9]?")
_RESOLUTION = re.compile(r"[0-9]{3,4}p|[1-9]k")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:/[1-9][0-9]*)?")  # "2.5", or exact "5/2"
_DATED = re.compile(r"-[0-9]{6}$")


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
        rule = _best_rule(self.prices, combination)
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


def _best_rule(rules: tuple[PriceRule, ...], combination: dict[str, Any]) -> PriceRule | None:
    matching = [rule for rule in rules if rule.matches(combination)]
    if not matching:
        return None
    most = max(len(rule.conditions) for rule in matching)
    best = [rule for rule in matching if len(rule.conditions) == most]
    return best[0] if len(best) == 1 else None


@dataclass(frozen=True, slots=True)
class Catalog:
    families: dict[str, ModelFamily] = field(default_factory=dict)
    markup_percent: Fraction = Fraction(0)
    credits_per_usd: Fraction = Fraction(1)
    _exact: dict[str, str] = field(default_factory=dict, repr=False)  # id or alias -> family

    @classmethod
    def build(
        cls,
        families: dict[str, ModelFamily],
        markup_percent: Fraction = Fraction(0),
        credits_per_usd: Fraction = Fraction(1),
    ) -> Catalog:
        """A catalog; CatalogError if two families claim the same id or alias."""
        exact: dict[str, str] = {}
        for name, family in families.items():
            for model in family.ids:
                other = exact.setdefault(model, name)
                if other != name:
                    raise CatalogError(f"{name}.ids", f"`{model}` belongs to `{other}` already.")
        return cls(dict(families), markup_percent, credits_per_usd, exact)

    # --- lookups -------------------------------------------------------------------------------

    def match(self, model: str) -> ModelFamily | None:
        """The family of a model id: its ids and aliases exactly, else the id with a `doubao-`
        prefix and a dated version (`-250528`) stripped, then `dreamina-` too, against the
        family names. Endpoint ids (`ep-…`) only through aliases."""
        model = model.strip()
        name = self._exact.get(model)
        if name is not None:
            return self.families[name]
        if model.startswith("ep-"):
            return None
        stem = _DATED.sub("", model.removeprefix("doubao-"))
        for candidate in (stem, stem.removeprefix("dreamina-")):
            if candidate in self.families:
                return self.families[candidate]
        return None

    def unit_price(
        self, family: ModelFamily, tier: str, audio: bool, resolution: str, video_input: bool
    ) -> Fraction:
        """Micro-credits per million tokens, markup included (exact)."""
        usd = family.usd_per_million(tier, audio, resolution, video_input)
        return usd * MICRO * self.credits_per_usd * (100 + self.markup_percent) / 100

    # --- documents -----------------------------------------------------------------------------

    def to_wire(self) -> dict[str, Any]:
        return {
            "markup_percent": fraction_text(self.markup_percent),
            "credits_per_usd": fraction_text(self.credits_per_usd),
            "families": {name: family.spec for name, family in self.families.items()},
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Catalog:
        families = data.get("families") or {}
        if not isinstance(families, dict):
            raise CatalogError("families", "must be an object of family name -> family.")
        return cls.build(
            {name: parse_family(name, spec) for name, spec in families.items()},
            amount(data.get("markup_percent", 0), "markup_percent"),
            _positive(amount(data.get("credits_per_usd", 1), "credits_per_usd")),
        )

    @classmethod
    def load(cls, path: Path | None = None) -> Catalog:
        """The catalog file (default: config/models.toml); ValueError naming the file."""
        path = DEFAULT_PATH if path is None else Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"model catalog {path}: cannot be read ({exc})") from exc
        unknown = set(data) - {"markup_percent", "credits_per_usd", "families"}
        if unknown:
            raise ValueError(f"model catalog {path}: unknown key(s) {', '.join(sorted(unknown))}")
        try:
            return cls.from_wire(data)
        except CatalogError as exc:
            raise ValueError(f"model catalog {path}: {exc}") from exc


# --- checking one family's document --------------------------------------------------------------


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


def _positive(value: Fraction) -> Fraction:
    if value <= 0:
        raise CatalogError("credits_per_usd", "must be greater than 0.")
    return value


def fraction_text(value: Fraction) -> str:
    """An exact amount as text: `n` or `n/d` (read back by `amount`)."""
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator}/{value.denominator}"


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


def _rules(value: Any, where: str, tiers: tuple[str, ...]) -> tuple[PriceRule, ...]:
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
        for name in ("audio", "video_input"):
            if name in conditions:
                _bool(conditions[name], f"{at}.{name}")
        if "service_tier" in conditions and conditions["service_tier"] not in tiers:
            raise CatalogError(f"{at}.service_tier", f"must be one of {', '.join(tiers)}.")
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
    if default_resolution not in sizes:
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
        prices=_rules(spec["prices"], f"{name}.prices", tiers),
        status=status,
        retired_at=_retired_at(spec.get("retired_at"), f"{name}.retired_at"),
        replacement=replacement,
    )
    if "video_url" in content and family.max_reference_videos == 0:
        raise CatalogError(
            f"{name}.reference_videos.max_count", "must be at least 1 when video_url is accepted."
        )
    for combination in family.combinations():
        if _best_rule(family.prices, combination) is None:
            described = ", ".join(f"{key}={value}" for key, value in combination.items())
            raise CatalogError(
                f"{name}.prices",
                f"no single most specific rule prices {described}: add one for it.",
            )
    return family
