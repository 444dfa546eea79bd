"""API key format, Argon2id hashing and checksum.

A key reads `nk_live_<key id>_<secret><checksum>` (`nk_test_…` for test keys):
- the key id (16 base62 chars) is the lookup handle and is not secret;
- the secret is 32 base62 chars (~190 bits);
- the checksum is 6 base62 chars of a CRC32 over everything before it, so a
  mistyped or truncated key is refused without any lookup or hashing.
"""

from __future__ import annotations

import hashlib
import secrets
import zlib
from dataclasses import dataclass
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
KEY_ID_LENGTH = 16
SECRET_LENGTH = 32
CHECKSUM_LENGTH = 6
PREFIXES = ("nk_live_", "nk_test_")
_ALPHABET_SET = frozenset(ALPHABET)

# OWASP minimum for Argon2id; verification costs ~20 ms and runs off the event loop.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)

Environment = Literal["live", "test"]


@dataclass(frozen=True, slots=True)
class ParsedKey:
    environment: Environment
    key_id: str
    secret: str


def _random_base62(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def new_key_id() -> str:
    return _random_base62(KEY_ID_LENGTH)


def new_secret() -> str:
    return _random_base62(SECRET_LENGTH)


def format_key(environment: Environment, key_id: str, secret: str) -> str:
    body = f"nk_{environment}_{key_id}_{secret}"
    return body + _checksum(body)


def parse_key(presented: str) -> ParsedKey | None:
    """Return the parts of a well-formed key, or None; never raises, never looks anything up."""
    prefix = presented[:8]
    if prefix not in PREFIXES:
        return None
    rest = presented[8:]
    if len(rest) != KEY_ID_LENGTH + 1 + SECRET_LENGTH + CHECKSUM_LENGTH:
        return None
    key_id, sep, tail = rest[:KEY_ID_LENGTH], rest[KEY_ID_LENGTH], rest[KEY_ID_LENGTH + 1 :]
    if sep != "_" or not _ALPHABET_SET.issuperset(key_id) or not _ALPHABET_SET.issuperset(tail):
        return None
    secret, checksum = tail[:SECRET_LENGTH], tail[SECRET_LENGTH:]
    if not secrets.compare_digest(_checksum(presented[:-CHECKSUM_LENGTH]), checksum):
        return None
    environment: Environment = "live" if prefix == "nk_live_" else "test"
    return ParsedKey(environment, key_id, secret)


def hash_secret(secret: str) -> str:
    """Argon2id PHC string of a secret (a whole presented key or an admin token)."""
    return _hasher.hash(secret)


def verify_secret(phc: str, secret: str) -> bool:
    """Blocking Argon2id verification: call it from a worker thread."""
    try:
        return _hasher.verify(phc, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def fingerprint(presented: str) -> str:
    """SHA-256 of a presented credential: the cache's handle, never the secret itself."""
    return hashlib.sha256(presented.encode("utf-8", "surrogatepass")).hexdigest()


def generate_key(environment: Environment = "live", key_id: str | None = None) -> tuple[str, str]:
    """A new key (shown once) and its Argon2id hash (stored). Pass key_id to rotate."""
    key = format_key(environment, key_id or new_key_id(), new_secret())
    return key, hash_secret(key)
