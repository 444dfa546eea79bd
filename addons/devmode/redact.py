"""Keys and credentials out of everything the dev proxy shows or writes (tail, cassettes)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"

# Header names whose values are credentials, whatever the service.
_SECRET_HEADERS = re.compile(
    r"^(authorization|proxy-authorization|cookie|set-cookie|x-api-key|api-key)$"
    r"|(^|[-_])(key|token|secret|signature|password)([-_]|$)",
    re.IGNORECASE,
)
# JSON members whose values are credentials.
_SECRET_FIELDS = re.compile(
    r"^(api_?key|key|secret|token|access_?token|authorization|password|ak|sk)$"
    r"|(_|^)(secret|token|password|api_key)$",
    re.IGNORECASE,
)
# Credential shapes inside any string: NextAPI keys, bearer tokens, webhook secrets, ep-keys.
_SECRET_VALUES = re.compile(
    r"nk_(?:live|test)_[A-Za-z0-9_]+|whsec_[A-Za-z0-9+/=]+|(?i:bearer)\s+\S+"
)


def header_value(name: str, value: str) -> str:
    if _SECRET_HEADERS.search(name):
        return REDACTED
    return text(value)


def headers(items: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Header pairs with credential values replaced (names kept, so a reader sees they were
    sent)."""
    return [[name, header_value(name, value)] for name, value in items]


def text(value: str) -> str:
    return _SECRET_VALUES.sub(REDACTED, value)


def data(value: Any) -> Any:
    """A JSON value with credential members and credential-shaped strings replaced."""
    if isinstance(value, dict):
        return {
            k: REDACTED if _SECRET_FIELDS.search(str(k)) and v not in (None, "") else data(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [data(item) for item in value]
    if isinstance(value, str):
        return text(value)
    return value


def body(raw: bytes) -> Any:
    """A body for display: the redacted JSON value if it is JSON, else redacted text, else a
    note of its size (binary, e.g. a video)."""
    if not raw:
        return None
    try:
        return data(json.loads(raw))
    except (ValueError, UnicodeDecodeError, RecursionError):
        pass
    try:
        return text(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return f"<{len(raw)} bytes>"
