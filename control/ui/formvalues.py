"""What the dashboard's forms type, turned into what the admin API takes: credits with up to
six decimals as integer micro-credits (exactly, never through a float), whole numbers, lists
typed one a line. A value that cannot be read raises FormError with a message for the page."""

from __future__ import annotations

import re

from control.http import ApiError

MICRO = 1_000_000
_CREDITS = re.compile(r"^(\d{1,16})(?:\.(\d{1,6}))?$")
_WHOLE = re.compile(r"^\d{1,16}$")
_SEPARATORS = re.compile(r"[\s,]+")


class FormError(ValueError):
    """A form value the page cannot send: its message says which field and why."""


def credits(text: str, label: str) -> int:
    """`"1.5"` credits as 1_500_000 micro-credits; more than six decimals, a sign, an exponent
    or anything but digits and one point is refused."""
    typed = text.strip().replace("_", "")
    match = _CREDITS.match(typed)
    if match is None:
        raise FormError(
            f"{label} must be a number of credits with at most 6 decimals, e.g. 1.5 "
            f"(got {text.strip()!r})."
        )
    whole, fraction = match.group(1), match.group(2) or ""
    return int(whole) * MICRO + int(fraction.ljust(6, "0"))


def whole_number(text: str, label: str) -> int | None:
    """A whole number, or None when left blank."""
    typed = text.strip()
    if not typed:
        return None
    if not _WHOLE.match(typed):
        raise FormError(f"{label} must be a whole number (got {typed!r}).")
    return int(typed)


def listed(text: str) -> list[str]:
    """Items typed one a line (or separated by commas or spaces), blanks dropped."""
    return [item for item in _SEPARATORS.split(text.strip()) if item]


def refusal(exc: FormError | ApiError) -> tuple[int, str]:
    """The status and message a page shows for a form it could not carry out: the form's own
    reading of a value, or the admin API's refusal (its message names the field)."""
    if isinstance(exc, ApiError):
        return exc.status, exc.message
    return 400, str(exc)
