"""Reading Stripe's objects as its events carry them: each field is the type it should be, or
nothing (an event is signed by Stripe, but its shape is still checked, never trusted)."""

from __future__ import annotations

from typing import Any


def text(value: Any) -> str | None:
    """A non-empty string, or None."""
    return value if isinstance(value, str) and value else None


def integer(value: Any) -> int | None:
    """An integer (an amount in minor units, a count), or None; a JSON boolean is not one."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def metadata(obj: dict[str, Any]) -> dict[str, Any]:
    """The object's metadata, or an empty one."""
    found = obj.get("metadata")
    return found if isinstance(found, dict) else {}
