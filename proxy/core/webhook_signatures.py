"""Webhook signatures after the Standard Webhooks scheme (https://www.standardwebhooks.com/).

A secret is `whsec_` followed by the standard base64 of 32 random bytes. A message is signed as
`v1,` + base64(HMAC-SHA256(key, f"{msg_id}.{timestamp}.".encode() + body)); the
`webhook-signature` header carries one such signature per secret, separated by spaces, so that a
receiver holding either the new or the previous secret accepts during a rotation.

Shared vocabulary: the control plane's deliveries and the dev proxy's callbacks sign alike.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from secrets import token_bytes

PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return PREFIX + base64.b64encode(token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key a `whsec_…` secret stands for (the prefix is optional, as verifiers allow)."""
    encoded = secret.removeprefix(PREFIX)
    # Tolerate unpadded base64, as the reference verifiers do.
    key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{int(timestamp)}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: a v1 signature per distinct secret, space-separated."""
    unique = list(dict.fromkeys(s for s in secrets if s))
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in unique)
