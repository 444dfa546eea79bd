"""The Seedance model catalog: what each model family accepts and what it costs, as data.

Seedance changes every few months, so nothing about a model is code: each family is a JSON
document (familyspec.py beside this file checks it; modelfamily.py is what the edge asks of
it), seeded from config/models.toml, edited through the control plane's `/v1/models`, and pushed
to every edge in the policy snapshot. The catalog adds what holds for all families: which family a
model id belongs to, and the markup and credits per USD that turn list prices into credits."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from proxy.core.seedance.familyspec import parse_family
from proxy.core.seedance.modelfamily import (
    CONTENT_TYPES,
    SERVICE_TIERS,
    CatalogError,
    ModelFamily,
    amount,
    fraction_text,
)

__all__ = [
    "CONTENT_TYPES",
    "SERVICE_TIERS",
    "Catalog",
    "CatalogError",
    "ModelFamily",
    "amount",
    "fraction_text",
    "parse_family",
]

DEFAULT_PATH = Path(__file__).resolve().parents[3] / "config" / "models.toml"
MICRO = 1_000_000  # micro-credits per credit
_DATED = re.compile(r"-[0-9]{6}$")


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

    def reads_flags(self, model: str) -> bool:
        """Whether the model takes legacy `--flags` from the prompt (for parse_create)."""
        family = self.match(model)
        return family is not None and family.legacy_flags

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


def _positive(value: Fraction) -> Fraction:
    if value <= 0:
        raise CatalogError("credits_per_usd", "must be greater than 0.")
    return value
