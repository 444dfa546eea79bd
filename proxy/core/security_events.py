"""Security events: one record per request the edge refuses for authentication or access (a failed
key, the failed-auth throttle, the IP allowlist), with the client address the edge believes.

The privacy policy keeps them 90 days to detect fraud and abuse. They travel with the usage
records (the same spool, the same transport to the control plane), told apart by
`"kind": "security"`; usage records carry no `kind` and never a client address.

A security event holds exactly `FIELDS`: never a header, a body, or any part of a presented key
but the id of a key that parses (the lookup handle, not a secret). A malformed key parses to
nothing, so nothing of it is kept.
"""

from __future__ import annotations

import ipaddress
import math
from enum import StrEnum
from typing import Any

from proxy.core import keys

KIND = "security"
FIELDS = ("request_id", "ts", "client_ip", "key_id", "org_id", "reason", "status", "route")
MAX_TEXT = 256  # org ids and route templates are far shorter; anything longer is not one


class Reason(StrEnum):
    """Why the edge refused: short, stable codes (admins filter on them)."""

    MISSING_KEY = "missing_key"
    MALFORMED_KEY = "malformed_key"
    UNKNOWN_KEY = "unknown_key"
    WRONG_SECRET = "wrong_secret"
    REVOKED = "revoked"
    SUSPENDED = "suspended"
    EXPIRED = "expired"
    ORG_SUSPENDED = "org_suspended"
    ORG_CLOSED = "org_closed"
    THROTTLED = "throttled"
    IP_NOT_ALLOWED = "ip_not_allowed"


REASONS = frozenset(reason.value for reason in Reason)


def is_event(record: dict[str, Any]) -> bool:
    return record.get("kind") == KIND


def check_event(record: dict[str, Any]) -> str | None:
    """What is wrong with a security event that came from elsewhere (an edge apart), or None.

    Stricter than a usage record: unknown fields are refused rather than ignored, and every
    field must look like what an edge puts there, so nothing else (a key, a header) gets stored
    under the cover of one."""
    extra = set(record) - {"kind", *FIELDS}
    if extra:
        return f"unexpected field `{sorted(extra)[0]}`"
    request_id = record.get("request_id")
    if not isinstance(request_id, str) or not 1 <= len(request_id) <= 128:
        return "`request_id` must be 1 to 128 characters"
    ts = record.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not _finite_time(ts):
        return "`ts` is missing or not a time"
    if not _is_address(record.get("client_ip")):
        return "`client_ip` must be an IP address or null"
    if not _is_key_id(record.get("key_id")):
        return "`key_id` must be a key id or null"
    org_id = record.get("org_id")
    if org_id is not None and (not isinstance(org_id, str) or not 1 <= len(org_id) <= MAX_TEXT):
        return "`org_id` must be text or null"
    reason = record.get("reason")
    if not isinstance(reason, str) or reason not in REASONS:
        return "`reason` is not a known reason"
    status = record.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        return "`status` must be an HTTP status"
    route = record.get("route")
    if route is not None and (not isinstance(route, str) or len(route) > MAX_TEXT):
        return "`route` must be text or null"
    return None


def _finite_time(ts: float) -> bool:
    return math.isfinite(ts) and 0 <= ts < 2**40


def _is_address(value: Any) -> bool:
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    try:
        return str(ipaddress.ip_address(value)) == value  # canonical, as edges write it
    except ValueError:
        return False


def _is_key_id(value: Any) -> bool:
    if value is None:
        return True
    return (
        isinstance(value, str)
        and len(value) == keys.KEY_ID_LENGTH
        and set(value) <= set(keys.ALPHABET)
    )
