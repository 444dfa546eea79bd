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
import time
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from proxy.auth.authenticator import AuthFailure
from proxy.core import keys
from proxy.policy import Snapshot

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
_BY_FAILURE = {
    AuthFailure.MISSING: Reason.MISSING_KEY,
    AuthFailure.MALFORMED: Reason.MALFORMED_KEY,
    AuthFailure.UNKNOWN: Reason.UNKNOWN_KEY,
    AuthFailure.REVOKED: Reason.REVOKED,
    AuthFailure.SUSPENDED: Reason.SUSPENDED,
    AuthFailure.EXPIRED: Reason.EXPIRED,
    AuthFailure.ORG_SUSPENDED: Reason.ORG_SUSPENDED,
    AuthFailure.ORG_CLOSED: Reason.ORG_CLOSED,
    AuthFailure.THROTTLED: Reason.THROTTLED,
}


def reason_for(failure: AuthFailure, *, key_known: bool) -> Reason:
    """The code of an authentication failure. The authenticator answers UNKNOWN for a wrong
    secret too (the client must not learn which ids exist); the record says which it was."""
    if failure is AuthFailure.UNKNOWN and key_known:
        return Reason.WRONG_SECRET
    return _BY_FAILURE[failure]


@dataclass(frozen=True, slots=True)
class SecurityMark:
    """Set on a request's context by the addon that refused it; the metering addon turns it into
    a security event once the answer's status is known."""

    reason: Reason
    org_id: str | None  # the org of a key id the policy knows (unverified), else None

    @classmethod
    def for_key(cls, reason: Reason, key_id: str | None, snapshot: Snapshot) -> SecurityMark:
        key = snapshot.keys.get(key_id) if key_id is not None else None
        return cls(reason, key.org_id if key is not None else None)


class ThrottledSample:
    """Which throttled refusals become events: the first per client address per minute. A
    flood of bad keys is answered 429 at hundreds per second; one event a minute shows the
    throttle at work without letting the flood write as many rows."""

    def __init__(self, capacity: int = 100_000, clock: Any = time.monotonic) -> None:
        self.capacity = capacity
        self.clock = clock
        self._last: OrderedDict[str, float] = OrderedDict()  # address -> when recorded

    def take(self, address: object) -> bool:
        key, now = str(address), self.clock()
        last = self._last.get(key)
        if last is not None and now - last < 60:
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        while len(self._last) > self.capacity:
            self._last.popitem(last=False)
        return True


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
