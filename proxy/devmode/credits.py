"""What a caught call would cost at the edge, for the tail. The one place the dev mode talks to
the price table: when pricing changes shape, only this adapter changes."""

from __future__ import annotations

import functools

from proxy.pricing import PriceTable
from proxy.seedance import CreateRequest, parse_create

MICRO = 1_000_000


@functools.cache
def _table() -> PriceTable:
    return PriceTable.load()


def estimate_credits(body: bytes) -> int | None:
    """Micro-credits the edge would reserve for this create body; None if it would refuse it
    (invalid body, unknown model)."""
    create = parse_create(body)
    if not isinstance(create, CreateRequest):
        return None
    try:
        return _table().estimate(create)
    except (KeyError, ValueError):
        return None


def charged_credits(model: str, tier: str, tokens: int, audio: bool | None) -> int | None:
    """Micro-credits the edge would charge for a finished task; None for an unknown model."""
    try:
        return _table().cost(model, tier or "default", tokens, generate_audio=audio)
    except (KeyError, ValueError):
        return None


def show(micro: int) -> str:
    """Micro-credits as credits, to at most six decimals: 1234500 → `1.2345`."""
    whole, frac = divmod(micro, MICRO)
    return f"{whole}.{frac:06d}".rstrip("0").rstrip(".")
