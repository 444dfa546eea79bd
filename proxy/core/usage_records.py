"""Usage records: exactly the usage data the privacy policy names (timestamps, endpoint, response
code, latency, credit consumption) plus ids. No prompt, no image data, no client address."""

from __future__ import annotations

from typing import Any

from proxy.core import security_events as security

FIELDS = (
    "request_id",
    "ts",
    "org_id",
    "key_id",
    "method",
    "route",
    "status",
    "latency_ms",
    "upstream_latency_ms",
    "bytes_in",
    "bytes_out",
    "credits",
    "model",
    "task_id",
    # `key` or `org` when the customer's own rate limit or concurrency refused the request (a
    # 429 the customer caused); None otherwise. Part of the response code, not of the request.
    "limited_by",
)


_TEXT = (str,)
_OPTIONAL_TEXT = (str, type(None))
_NUMBER = (int, float)
_OPTIONAL_NUMBER = (int, float, type(None))
_SHAPE: dict[str, tuple[type, ...]] = {
    "request_id": _TEXT,
    "ts": _NUMBER,
    "org_id": _OPTIONAL_TEXT,
    "key_id": _OPTIONAL_TEXT,
    "method": _TEXT,
    "route": _OPTIONAL_TEXT,
    "status": (int,),
    "latency_ms": _OPTIONAL_NUMBER,
    "upstream_latency_ms": _OPTIONAL_NUMBER,
    "bytes_in": (int,),
    "bytes_out": (int,),
    "credits": (int,),
    "model": _OPTIONAL_TEXT,
    "task_id": _OPTIONAL_TEXT,
    "limited_by": _OPTIONAL_TEXT,  # missing in an older edge's records: None
}
MAX_INT = 2**63 - 1  # what SQLite stores


def check_record(record: dict[str, Any]) -> str | None:
    """What is wrong with a record that came from elsewhere (an edge apart), or None.

    The spool carries usage records (no `kind`) and security events (`kind: security`)."""
    if security.is_event(record):
        return security.check_event(record)
    if "kind" in record:
        return "`kind` is not a known kind of record"
    for name, kinds in _SHAPE.items():
        value = record.get(name)
        if isinstance(value, bool) or not isinstance(value, kinds):
            return f"`{name}` is missing or has the wrong type"
        if isinstance(value, int) and not -MAX_INT <= value <= MAX_INT:
            return f"`{name}` is out of range"
        if isinstance(value, float) and value != value:  # NaN
            return f"`{name}` is not a number"
    if not record["request_id"] or len(record["request_id"]) > 128:
        return "`request_id` must be 1 to 128 characters"
    return None
