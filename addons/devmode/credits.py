"""What a caught call would cost at the edge, for the tail, priced from the shipped model catalog
(config/models.toml) as the edge prices it. The one place the dev mode talks to pricing."""

from __future__ import annotations

import functools
import time

from proxy.core.pricing import charge, quote
from proxy.core.seedance.catalog import Catalog
from proxy.seedance.creates import CreateRequest, check_family, parse_create

MICRO = 1_000_000


@functools.cache
def _catalog() -> Catalog:
    return Catalog.load()


def estimate_credits(body: bytes) -> int | None:
    """Micro-credits the edge would reserve for this create body; None if it would refuse it
    (invalid body, unknown or retired model, a value the model does not take)."""
    catalog = _catalog()
    create = parse_create(body, catalog.reads_flags)
    if not isinstance(create, CreateRequest):
        return None
    family = catalog.match(create.model)
    if family is None or check_family(create, family, time.time()) is not None:
        return None
    return quote(catalog, family, create).amount


def charged_credits(
    model: str, tier: str, tokens: int, audio: bool | None, resolution: str | None = None
) -> int | None:
    """Micro-credits the edge would charge for a finished task (at its resolution, tier and
    audio; the task object does not say whether it had a video input: priced without); None
    for an unknown model or combination."""
    catalog = _catalog()
    family = catalog.match(model)
    if family is None:
        return None
    audio = family.audio_default if audio is None else audio
    resolution = resolution or family.default_resolution
    try:
        unit = catalog.unit_price(
            family, tier or "default", audio and family.audio_supported, resolution, False
        )
    except KeyError:
        return None
    return charge(unit, tokens)


def show(micro: int) -> str:
    """Micro-credits as credits, to at most six decimals: 1234500 → `1.2345`."""
    whole, frac = divmod(micro, MICRO)
    return f"{whole}.{frac:06d}".rstrip("0").rstrip(".")
