"""Validation of admin input: every bad value is refused with a message naming the field."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from control.http import bad_request, parse_time
from control.store import db as dbm
from proxy.core.netaddr import parse_networks

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
RATE_LIMIT_FIELDS = ("requests_per_minute", "requests_per_day", "concurrent_tasks")
MAX_LIMIT = 10**9  # requests or tasks: far beyond any real limit, and fits every counter
MAX_AMOUNT = 2**53  # micro-credits: exact in JSON doubles and in msgpack's int64
MAX_GRACE_SECONDS = 7 * 86400  # a rotated-out secret (a key's, a webhook's) works at most this long


# Control characters (Unicode category Cc: C0 with NUL, DEL, C1) in a name or any other text an
# admin types: they break logs, CSV exports and terminals, and NUL truncates C strings.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# The same rule as a JSON Schema `pattern` (ECMA 262 syntax) for the OpenAPI document.
NO_CONTROL_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f]*$"


def has_control(value: str) -> bool:
    return _CONTROL.search(value) is not None


def no_control(value: str, field: str) -> str:
    if has_control(value):
        raise bad_request(f"`{field}` must not contain control characters.")
    return value


def text(body: dict[str, Any], field: str, *, maximum: int = 200) -> str:
    value = body.get(field)
    if isinstance(value, str):
        no_control(value, field)
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"`{field}` must be a non-empty string.")
    if len(value) > maximum:
        raise bad_request(f"`{field}` must be at most {maximum} characters.")
    return value.strip()


def email(body: dict[str, Any], field: str = "email") -> str:
    value = text(body, field, maximum=320)
    if not _EMAIL.match(value):
        raise bad_request(f"`{field}` is not an email address.")
    return value


def allowed_ips(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 1000:
        raise bad_request("`allowed_ips` must be a list of IP addresses or CIDRs.")
    try:
        networks = parse_networks(value)
    except ValueError as exc:
        raise bad_request(f"`allowed_ips`: {exc}") from None
    return [str(n) for n in networks]


def models(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(m, str) and m.strip() for m in value):
        raise bad_request("`models` must be a list of model ids, or null for every model.")
    for model in value:
        no_control(model, "models")
    return sorted({m.strip() for m in value})


def rate_limit(value: Any) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request("`rate_limit` must be an object.")
    unknown = set(value) - set(RATE_LIMIT_FIELDS)
    if unknown:
        raise bad_request(f"`rate_limit` has unknown fields: {', '.join(sorted(unknown))}.")
    result = {}
    for field, limit in value.items():
        if limit is None:
            continue
        if not _positive_int(limit) or limit > MAX_LIMIT:
            raise bad_request(f"`rate_limit.{field}` must be an integer from 1 to {MAX_LIMIT}.")
        result[field] = limit
    return result


def spend_limit(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"amount", "period"}:
        raise bad_request("`spend_limit` must be {amount, period}.")
    amount, period = value.get("amount"), value.get("period", "month")
    if not (isinstance(amount, int) and not isinstance(amount, bool) and 0 <= amount <= MAX_AMOUNT):
        raise bad_request(
            f"`spend_limit.amount` must be an integer from 0 to {MAX_AMOUNT} (micro-credits)."
        )
    if period not in ("day", "month"):
        raise bad_request("`spend_limit.period` must be `day` or `month`.")
    return {"amount": amount, "period": period}


def optional_time(value: Any, field: str) -> float | None:
    return None if value is None else parse_time(value, field)


def int_range(value: Any, field: str, low: int, high: int) -> int:
    if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
        raise bad_request(f"`{field}` must be an integer from {low} to {high}.")
    return value


def flag(body: dict[str, Any], field: str, default: bool = False) -> bool:
    value = body.get(field, default)
    if not isinstance(value, bool):
        raise bad_request(f"`{field}` must be true or false.")
    return value


def grace_seconds(body: dict[str, Any], default: int) -> int:
    """A rotation's `grace_seconds`: how long the secret it replaces goes on working."""
    return int_range(body.get("grace_seconds", default), "grace_seconds", 0, MAX_GRACE_SECONDS)


def status(
    body: dict[str, Any], changes: dict[str, Any], allowed: tuple[str, str], hint: str = ""
) -> None:
    """The body's `status` into `changes`, if it has one and it is one of `allowed` (a 400
    otherwise; `hint` says how to reach another status)."""
    if "status" in body:
        if body["status"] not in allowed:
            raise bad_request(f"`status` must be `{allowed[0]}` or `{allowed[1]}`{hint}.")
        changes["status"] = body["status"]


def only_fields(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(body) - allowed
    if unknown:
        raise bad_request(f"Unknown fields: {', '.join(sorted(unknown))}.")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


type Column = Callable[[dict[str, Any]], Any]

# Body field -> its validated column value, for the fields orgs and keys share.
COLUMNS: dict[str, Column] = {
    "name": lambda body: text(body, "name"),
    "allowed_ips": lambda body: dbm.dumps(allowed_ips(body["allowed_ips"])),
    "rate_limit": lambda body: dbm.dumps(rate_limit(body["rate_limit"])),
    "spend_limit": lambda body: dbm.dumps(spend_limit(body["spend_limit"])),
}


def changes(body: dict[str, Any], columns: dict[str, Column]) -> dict[str, Any]:
    """Validated column values for the fields present in `body`."""
    return {field: column(body) for field, column in columns.items() if field in body}
