"""Callback ingress tokens: the edge stands between the upstream's task callbacks and the
customer's `callback_url`.

On a create with `callback_url`, the edge relays instead a URL of its own,
`<public url>/_nextapi/callbacks/<token>`, unguessable and different for every create. The
token carries the endpoint, the org and a nonce, signed
with HMAC-SHA256, so any edge (sharing the secret) can verify it without shared state, across
restarts; the upstream does not sign its callbacks, and a forged one fails the signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

INGRESS_PREFIX = "/_nextapi/callbacks/"


@dataclass(frozen=True, slots=True)
class CallbackTarget:
    url: str  # the registered endpoint's id
    org_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def derive_secret(material: str) -> bytes:
    """The signing key: from a configured secret, or from the upstream key all edges share."""
    return hashlib.sha256(b"nextapi-callback-token\x00" + material.encode()).digest()


def make_token(secret: bytes, target: CallbackTarget) -> str:
    # A fresh nonce per create: every task's ingress URL is its own and cannot be guessed from
    # another's.
    fields = {"u": target.url, "o": target.org_id, "n": secrets.token_urlsafe(12)}
    payload = _b64(json.dumps(fields).encode())
    signature = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def read_token(secret: bytes, token: str) -> CallbackTarget | None:
    payload, sep, signature = token.partition(".")
    if not sep:
        return None
    expected = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature):
        return None
    try:
        data = json.loads(_unb64(payload))
        return CallbackTarget(url=str(data["u"]), org_id=str(data["o"]))
    except (ValueError, KeyError, TypeError):
        return None


def ingress_url(public_url: str, secret: bytes, target: CallbackTarget) -> str:
    return public_url.rstrip("/") + INGRESS_PREFIX + make_token(secret, target)
