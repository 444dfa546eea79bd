"""`Idempotency-Key` on a create (the IETF draft's header, as Stripe uses it), scoped to the org.

The SDKs make a new `X-Client-Request-Id` on every retry and the upstream has no idempotency of
its own, so a retried create is a second, paid task. With the header, the first create with a
key runs; the same key with the same body within 24 hours is answered with the first result
(no second upstream create, no second reservation); the same key with another body is a 422.
The keys live in the control plane's SQLite, so they hold across edges and restarts."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

HEADER = "Idempotency-Key"
TTL_SECONDS = 24 * 3600
_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII, as the draft's examples

NEW = "new"  # the caller runs the create, then records or releases the key
REPLAY = "replay"  # answer the stored result
MISMATCH = "mismatch"  # the key was used with another body
IN_PROGRESS = "in_progress"  # the first create with this key has not answered yet


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: str
    status: int | None = None
    body: bytes | None = None


def valid_key(value: str) -> bool:
    return _KEY.fullmatch(value) is not None


def body_hash(body: dict[str, Any]) -> str:
    """The request's identity: its JSON with keys sorted and `null` fields left out (the edge
    and the upstream read them as absent), so that an SDK's retry and a hand-written request
    for the same thing agree, and any real difference does not."""
    given = {key: value for key, value in body.items() if value is not None}
    canonical = json.dumps(given, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
