"""Signed, expiring links to the gateway's copies of generated videos and last frames.

`/_nextapi/videos/<task_id>/<name>?expires=E&retained=R&sig=S`: the signature (HMAC-SHA256 over
the path and both times) lets any edge that shares the secret check a link without a lookup.
`expires` is when this link stops working (a fresh get gives a fresh link); `retained` is when
the org's video retention ends, after which the video is deleted and every link to it answers
410 Gone, whatever its own expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlencode

VIDEOS_PREFIX = "/_nextapi/videos/"
_TASK_ID = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
_NAME = r"(?:video|last_frame)\.[a-z0-9]{1,8}"
_PATH = re.compile(rf"({_TASK_ID})/({_NAME})")
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{43}")


def derive_secret(material: str) -> bytes:
    """The signing key: from a configured secret, or from the upstream key all edges share."""
    return hashlib.sha256(b"nextapi-video-link\x00" + material.encode()).digest()


@dataclass(frozen=True, slots=True)
class VideoLink:
    task_id: str
    name: str  # video.mp4 | last_frame.png | …
    expires: int  # unix seconds: the link's own end
    retained: int  # unix seconds: the end of the video's retention

    @property
    def key(self) -> str:
        """The asset store key of what the link points at."""
        return f"{self.task_id}/{self.name}"


class LinkProblem(Enum):
    MALFORMED = "malformed"  # not a link we make: 404
    FORGED = "forged"  # a bad signature: 404, indistinguishable from nothing here
    EXPIRED = "expired"  # a real link past its time: 403, get the task again for a new one
    GONE = "gone"  # the retention ended: 410


class VideoLinks:
    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def _signature(self, link: VideoLink) -> str:
        message = f"{link.task_id}/{link.name}\n{link.expires}\n{link.retained}".encode()
        digest = hmac.new(self.secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def path(self, link: VideoLink) -> str:
        """The link's path and query (the caller puts the edge's public origin before it)."""
        query = urlencode(
            {"expires": link.expires, "retained": link.retained, "sig": self._signature(link)}
        )
        return f"{VIDEOS_PREFIX}{link.task_id}/{link.name}?{query}"

    def read(self, path: str, query: dict[str, str], now: float) -> VideoLink | LinkProblem:
        """The link a request names, or what is wrong with it. Retention is checked before
        expiry: a deleted video is Gone through every link ever made to it."""
        match = _PATH.fullmatch(path.removeprefix(VIDEOS_PREFIX))
        expires, retained = query.get("expires", ""), query.get("retained", "")
        signature = query.get("sig", "")
        if (
            not path.startswith(VIDEOS_PREFIX)
            or match is None
            or not (expires.isdigit() and retained.isdigit() and len(expires + retained) < 32)
            or not _SIGNATURE.fullmatch(signature)
        ):
            return LinkProblem.MALFORMED
        link = VideoLink(match[1], match[2], int(expires), int(retained))
        if not hmac.compare_digest(self._signature(link), signature):
            return LinkProblem.FORGED
        if now >= link.retained:
            return LinkProblem.GONE
        if now >= link.expires:
            return LinkProblem.EXPIRED
        return link


def is_ours(url: object) -> bool:
    """A URL that already points at the gateway's copies (a task object rewritten before)."""
    return isinstance(url, str) and VIDEOS_PREFIX in url
