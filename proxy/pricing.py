"""The price table (config/prices.toml): which model family an id belongs to, how many tokens a
create can produce, and what tokens cost in micro-credits. Integer (exact rational) arithmetic
only; amounts are rounded up. The table's layout is described in config/prices.toml.

The token count is the upstream's: width × height × frames // 1024 with frames = 24 × duration + 1
(or `frames`). The pixel sizes are the same as the simulator's, so that an estimate made here
bounds what the simulator bills."""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from proxy.seedance import AUTO_DURATION, FPS, RESOLUTIONS, SERVICE_TIERS, CreateRequest

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "config" / "prices.toml"
DEFAULT_DURATION = 5
MICRO = 1_000_000
TOKENS_PER_PRICE_UNIT = 1_000_000  # prices are per million tokens
SILENT = "_silent"

# (width, height) per ratio and resolution; 9:16 is 16:9 swapped.
VIDEO_SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "16:9": {"480p": (864, 480), "720p": (1280, 720), "1080p": (1920, 1088)},
    "4:3": {"480p": (736, 544), "720p": (1120, 832), "1080p": (1664, 1248)},
    "1:1": {"480p": (640, 640), "720p": (960, 960), "1080p": (1440, 1440)},
    "3:4": {"480p": (544, 736), "720p": (832, 1120), "1080p": (1248, 1664)},
    "9:16": {"480p": (480, 864), "720p": (720, 1280), "1080p": (1088, 1920)},
    "21:9": {"480p": (960, 416), "720p": (1504, 640), "1080p": (2176, 928)},
}

_DATED = re.compile(r"-[0-9]{6}$")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_TOP_KEYS = {"markup_percent", "credits_per_usd", "models", "endpoints"}
_MODEL_KEYS = {"usd_per_million_tokens", "default_resolution", "durations", "generate_audio"}


def video_size(resolution: str, ratio: str | None) -> tuple[int, int]:
    """Pixel size of a video; `adaptive` or no ratio counts as the largest area at that
    resolution (the upstream chooses the ratio then, and the estimate must be an upper bound)."""
    if ratio in VIDEO_SIZES:
        return VIDEO_SIZES[ratio][resolution]
    sizes = [by_resolution[resolution] for by_resolution in VIDEO_SIZES.values()]
    return max(sizes, key=lambda size: size[0] * size[1])


def video_tokens(resolution: str, ratio: str | None, frames: int) -> int:
    width, height = video_size(resolution, ratio)
    return width * height * frames // 1024


@dataclass(frozen=True)
class ModelPrice:
    family: str  # e.g. "seedance-1-0-pro"
    # Micro-credits per million tokens (list price × credits_per_usd, before markup), per key:
    # "<tier>" (with audio where audio matters) and "<tier>_silent" when silent costs less.
    micro_credits_per_million: dict[str, int]
    default_resolution: str
    min_duration: int
    max_duration: int
    generate_audio: bool  # the family's default when a create does not say

    def price(self, tier: str, generate_audio: bool | None = None) -> int:
        """Micro-credits per million tokens; KeyError for an unknown tier."""
        if tier not in SERVICE_TIERS:
            raise KeyError(tier)
        audio = self.generate_audio if generate_audio is None else generate_audio
        if not audio and tier + SILENT in self.micro_credits_per_million:
            return self.micro_credits_per_million[tier + SILENT]
        return self.micro_credits_per_million[tier]


@dataclass(frozen=True)
class PriceTable:
    models: dict[str, ModelPrice]
    endpoints: dict[str, str]  # endpoint id -> family
    markup_percent: Fraction = Fraction(0)
    credits_per_usd: Fraction = Fraction(1)

    # --- loading -------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | None = None) -> PriceTable:
        """Read a price table (default: config/prices.toml); ValueError if it is unreadable or
        malformed, with the file's name and what is wrong."""
        path = DEFAULT_PATH if path is None else Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"price table {path}: cannot be read ({exc})") from exc
        return cls.loads(text, source=str(path))

    @classmethod
    def loads(cls, text: str, source: str = "<price table>") -> PriceTable:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"price table {source}: not valid TOML ({exc})") from exc
        try:
            return cls.from_mapping(data)
        except ValueError as exc:
            raise ValueError(f"price table {source}: {exc}") from exc

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> PriceTable:
        unknown = set(data) - _TOP_KEYS
        if unknown:
            raise ValueError(f"unknown top-level key(s) {', '.join(sorted(unknown))}")
        markup = _amount(data.get("markup_percent", 0), "markup_percent")
        credits = _amount(data.get("credits_per_usd", 1), "credits_per_usd")
        if credits <= 0:
            raise ValueError("credits_per_usd must be greater than 0")
        models = data.get("models")
        if not isinstance(models, dict) or not models:
            raise ValueError("[models] must hold at least one model family")
        prices = {family: _model_price(family, entry, credits) for family, entry in models.items()}
        endpoints = data.get("endpoints", {})
        if not isinstance(endpoints, dict):
            raise ValueError("[endpoints] must be a table of endpoint id = family")
        for endpoint, family in endpoints.items():
            if family not in prices:
                raise ValueError(f"endpoints.{endpoint}: unknown model family {family!r}")
        return cls(prices, dict(endpoints), markup, credits)

    # --- lookups -------------------------------------------------------------------------------

    def family(self, model: str) -> str | None:
        """The family of a model id: `doubao-` and a dated version stripped, then `dreamina-` if
        needed; endpoint ids (`ep-…`) only through [endpoints]. None when unknown."""
        model = model.strip()
        if model in self.endpoints:
            return self.endpoints[model]
        if model.startswith("ep-"):
            return None
        name = _DATED.sub("", model.removeprefix("doubao-"))
        for candidate in (name, name.removeprefix("dreamina-")):
            if candidate in self.models:
                return candidate
        return None

    def match(self, model: str) -> ModelPrice | None:
        family = self.family(model)
        return None if family is None else self.models[family]

    def _require(self, model: str) -> ModelPrice:
        price = self.match(model)
        if price is None:
            raise KeyError(model)
        return price

    # --- amounts -------------------------------------------------------------------------------

    def frames(self, request: CreateRequest) -> int:
        """Frames the create can produce at most: `frames`, else 24 × duration + 1 (no duration:
        5 s; -1, auto: the family's longest). KeyError for an unknown model."""
        if request.frames is not None:
            return request.frames
        duration = DEFAULT_DURATION if request.duration is None else request.duration
        if duration == AUTO_DURATION:
            duration = self._require(request.model).max_duration
        return FPS * duration + 1

    def tokens(self, request: CreateRequest) -> int:
        """The most tokens the create can produce (no resolution: the family's default; no ratio
        or `adaptive`: the largest area). KeyError for an unknown model."""
        price = self._require(request.model)
        resolution = request.resolution or price.default_resolution
        return video_tokens(resolution, request.ratio, self.frames(request))

    def cost(
        self, model: str, tier: str, tokens: int, *, generate_audio: bool | None = None
    ) -> int:
        """Micro-credits for `tokens` of `model` at `tier`, markup included, rounded up.
        KeyError for an unknown model or tier."""
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
            raise ValueError("tokens must be a non-negative integer")
        per_million = self._require(model).price(tier, generate_audio)
        amount = Fraction(tokens * per_million, TOKENS_PER_PRICE_UNIT)
        return math.ceil(amount * (100 + self.markup_percent) / 100)

    def estimate(self, request: CreateRequest) -> int:
        """The most this create can cost, in micro-credits (KeyError for an unknown model)."""
        return self.cost(
            request.model,
            request.service_tier or "default",
            self.tokens(request),
            generate_audio=request.generate_audio,
        )


# --- parsing helpers ---------------------------------------------------------------------------


def _amount(value: Any, where: str) -> Fraction:
    """An exact non-negative amount from an integer or a decimal string (never a float)."""
    if isinstance(value, bool):
        raise ValueError(f"{where} must be an integer or a decimal string, not a boolean")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{where} must not be negative")
        return Fraction(value)
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        return Fraction(value.strip())
    if isinstance(value, float):
        raise ValueError(f'{where} must be a decimal string such as "{value}", not a float')
    raise ValueError(f"{where} must be a non-negative integer or decimal string")


def _model_price(family: str, entry: Any, credits_per_usd: Fraction) -> ModelPrice:
    where = f"models.{family}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a table")
    unknown = set(entry) - _MODEL_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    table = entry.get("usd_per_million_tokens")
    if not isinstance(table, dict):
        raise ValueError(f"{where}.usd_per_million_tokens must be a table of tier = price")
    allowed = set(SERVICE_TIERS) | {tier + SILENT for tier in SERVICE_TIERS}
    unknown = set(table) - allowed
    if unknown:
        raise ValueError(f"{where}.usd_per_million_tokens: unknown key(s) {sorted(unknown)}")
    missing = [tier for tier in SERVICE_TIERS if tier not in table]
    silent = [tier for tier in SERVICE_TIERS if tier + SILENT in table]
    if missing or (silent and len(silent) != len(SERVICE_TIERS)):
        raise ValueError(
            f"{where}.usd_per_million_tokens needs a price for every tier "
            f"({', '.join(SERVICE_TIERS)}), and `_silent` prices for all of them or none"
        )
    micro: dict[str, int] = {}
    for key, value in table.items():
        exact = _amount(value, f"{where}.usd_per_million_tokens.{key}") * MICRO * credits_per_usd
        if exact.denominator != 1:
            raise ValueError(
                f"{where}.usd_per_million_tokens.{key} × credits_per_usd is not a whole "
                "number of micro-credits per million tokens"
            )
        micro[key] = int(exact)
    resolution = entry.get("default_resolution")
    if resolution not in RESOLUTIONS:
        raise ValueError(f"{where}.default_resolution must be one of {', '.join(RESOLUTIONS)}")
    durations = entry.get("durations")
    if not (
        isinstance(durations, list)
        and len(durations) == 2
        and all(isinstance(d, int) and not isinstance(d, bool) for d in durations)
        and 1 <= durations[0] <= durations[1]
    ):
        raise ValueError(f"{where}.durations must be [shortest, longest] in whole seconds")
    audio = entry.get("generate_audio", False)
    if not isinstance(audio, bool):
        raise ValueError(f"{where}.generate_audio must be true or false")
    return ModelPrice(family, micro, resolution, durations[0], durations[1], audio)
