"""Stripe's request encoding: form fields in bracket notation (`metadata[org_id]=x`,
`line_items[0][price_data][unit_amount]=500`, `expand[]=latest_charge`) into nested dicts and
lists, and typed reads of the values (all strings on the wire)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from simulator.stripe.errors import StripeError, invalid

_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def _split_key(key: str) -> list[str]:
    head, bracket, _ = key.partition("[")
    if not bracket:
        return [key]
    rest = key[len(head) :]
    segments = _SEGMENT.findall(rest)
    if "".join(f"[{s}]" for s in segments) != rest or not head:
        raise StripeError(400, f"Invalid parameter name: {key}", code="parameter_invalid")
    return [head, *segments]


def _listify(value: Any) -> Any:
    """Dicts whose keys are all indexes (`[0]`, `[1]`, or appended `[]`) become lists."""
    if not isinstance(value, dict):
        return value
    items = {k: _listify(v) for k, v in value.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def parse_form(body: str) -> dict[str, Any]:
    """Nested params from an `application/x-www-form-urlencoded` body or a query string."""
    root: dict[str, Any] = {}
    appended = 0
    for key, value in parse_qsl(body, keep_blank_values=True):
        path = _split_key(key)
        node = root
        for depth, segment in enumerate(path):
            if segment == "":  # `name[]`: the next index of that list
                segment = str(10**9 + appended)
                appended += 1
            last = depth == len(path) - 1
            if last:
                node[segment] = value
                break
            child = node.setdefault(segment, {})
            if not isinstance(child, dict):
                raise StripeError(400, f"Invalid parameter name: {key}", code="parameter_invalid")
            node = child
    result = _listify(root)
    assert isinstance(result, dict)
    return result


def get_int(params: dict[str, Any], name: str, param: str | None = None) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise invalid(param or name, f"Invalid integer: {value}", "parameter_invalid_integer")
    return int(value)


def get_bool(params: dict[str, Any], name: str) -> bool | None:
    value = params.get(name)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise invalid(name, f"Invalid boolean: {value}", "parameter_invalid_boolean")
    return value == "true"


def get_str(params: dict[str, Any], name: str, param: str | None = None) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(param or name, f"Invalid string: {name}", "parameter_invalid_string")
    return value


def get_dict(params: dict[str, Any], name: str, param: str | None = None) -> dict[str, Any]:
    value = params.get(name, {})
    if value == "":  # Stripe's way of clearing a hash
        return {}
    if not isinstance(value, dict):
        raise invalid(param or name, f"Invalid object: {param or name}", "parameter_invalid")
    return value


def get_metadata(params: dict[str, Any], param: str = "metadata") -> dict[str, str]:
    """Stripe's limits: 50 keys, keys up to 40 characters, values up to 500, all strings."""
    metadata = get_dict(params, "metadata", param)
    if len(metadata) > 50:
        raise invalid(param, "Metadata can have at most 50 keys.")
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise invalid(f"{param}[{key}]", "Metadata values must be strings.")
        if len(key) > 40 or len(value) > 500:
            raise invalid(
                f"{param}[{key}]", "Metadata keys are limited to 40 characters and values to 500."
            )
    return dict(metadata)
