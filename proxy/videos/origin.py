"""Whole-file video downloads, streamed.

mitmproxy sends an answer an addon makes in one piece, from memory, but streams what an upstream
sends. So a download without `Range` of a video larger than one chunk is not answered by the
Videos addon itself: it is relayed from this small loopback server, which reads the store a
chunk at a time, and mitmproxy streams it through (addons/videos.py). Only the edge reaches it:
it listens on loopback and wants a per-process token.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from proxy.core.video_assets import AssetStore, check_key

TOKEN_HEADER = "x-nextapi-origin-token"
READ_BYTES = 1 << 20


class VideoOrigin:
    def __init__(self, store: AssetStore) -> None:
        self.store = store
        self.token = secrets.token_urlsafe(32)
        self.streams = 0  # whole files streamed, for /metrics
        self.address: tuple[str, int] | None = None  # set once it listens
        self.app = Starlette(routes=[Route("/{task}/{name}", self.serve, methods=["GET"])])

    async def serve(self, request: Request) -> Response:
        offered = request.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(offered.encode(), self.token.encode()):
            return Response(status_code=404)
        try:
            key = check_key(f"{request.path_params['task']}/{request.path_params['name']}")
        except ValueError:
            return Response(status_code=404)
        info = await self.store.stat(key)
        if info is None:
            return Response(status_code=410)
        self.streams += 1
        return StreamingResponse(
            self._chunks(key, info.size),
            media_type=info.content_type,
            headers={"Content-Length": str(info.size)},
        )

    async def _chunks(self, key: str, size: int) -> AsyncIterator[bytes]:
        for start in range(0, size, READ_BYTES):
            yield await self.store.read(key, start, min(size, start + READ_BYTES) - 1)
