"""Serves the gateway's copies of generated videos through their signed links
(proxy/videos/delivery.py), with range requests so players can seek.

No API key: the link's signature is the credential, as with the upstream's own links. A forged
or garbled link is a 404; a real one past its expiry is a 403 (a fresh get of the task gives a
fresh link); a video past the org's retention, or deleted with its task, is 410 Gone.
"""

from __future__ import annotations

import logging

from mitmproxy import ctx, http

from addons.respond import context, refuse
from proxy.core.video_assets import AssetError
from proxy.errors import EdgeError, access_denied, not_found, upstream_unavailable
from proxy.options import declare
from proxy.services import EdgeServices
from proxy.videos.byterange import Unsatisfiable, parse_range
from proxy.videos.links import LinkProblem, VideoLink
from proxy.videos.origin import TOKEN_HEADER, VideoOrigin

log = logging.getLogger(__name__)
STREAMED = "nextapi.video_stream"  # flow metadata: the headers of a streamed whole file


def gone() -> EdgeError:
    message = "The video was deleted: its retention period ended, or its task was deleted."
    return EdgeError(410, "VideoDeleted", message)


class Videos:
    def __init__(self, services: EdgeServices) -> None:
        self.services = services

    def load(self, loader) -> None:
        declare(
            loader,
            "nextapi_video_chunk_bytes",
        )

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response:
            return
        rctx = context(flow)
        if rctx.route is None or rctx.route.name != "videos.asset":
            return
        videos = self.services.videos
        if videos is None:
            refuse(flow, not_found())
            return
        query = {k: v for k, v in flow.request.query.items()}
        link = videos.links.read(flow.request.path.split("?", 1)[0], query, videos.clock())
        if link is LinkProblem.GONE:
            refuse(flow, gone())
        elif link is LinkProblem.EXPIRED:
            refuse(flow, access_denied("The link expired: get the task again for a new one."))
        elif isinstance(link, LinkProblem):
            refuse(flow, not_found())
        else:
            rctx.task_id = link.task_id
            try:
                await self._serve(flow, link)
            except AssetError as exc:
                log.warning("video store unavailable: %s", exc)
                refuse(flow, upstream_unavailable("The video store is unreachable."))

    async def _serve(self, flow: http.HTTPFlow, link: VideoLink) -> None:
        videos = self.services.videos
        assert videos is not None
        store = videos.store
        info = await store.stat(link.key)
        if info is None:
            refuse(flow, gone())
            return
        headers = {
            "Content-Type": info.content_type,
            "Accept-Ranges": "bytes",
            # Shared caches must not keep it past the link, nor past the retention.
            "Cache-Control": f"private, max-age={max(0, link.expires - int(videos.clock()))}",
            "X-Request-Id": context(flow).request_id,
        }
        chunk = ctx.options.nextapi_video_chunk_bytes
        try:
            wanted = parse_range(flow.request.headers.get("range"), info.size, chunk)
        except Unsatisfiable:
            error = EdgeError(416, "RangeNotSatisfiable", "The range is outside the file.")
            error.headers["Content-Range"] = f"bytes */{info.size}"
            refuse(flow, error)
            return
        head = flow.request.method == "HEAD"
        origin = self.services.video_origin
        if wanted is None and not head and info.size > chunk and origin is not None:
            self._stream(flow, link, origin, headers)
            return
        status, start, end = 200, 0, info.size - 1
        if wanted is not None:
            status, start, end = 206, wanted.start, wanted.end
            headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
        body = b"" if head or info.size == 0 else await store.read(link.key, start, end)
        response = http.Response.make(status, body, headers)
        response.headers["content-length"] = str(end - start + 1 if info.size else 0)
        flow.response = response

    def _stream(
        self, flow: http.HTTPFlow, link: VideoLink, origin: VideoOrigin, headers: dict[str, str]
    ) -> None:
        """A whole large file: relayed from the loopback origin so mitmproxy streams it rather
        than hold it in memory. Nothing of the client's request goes there but the path."""
        assert origin.address is not None
        host, port = origin.address
        request = flow.request
        request.scheme, request.host, request.port = "http", host, port
        request.path = f"/{link.task_id}/{link.name}"
        request.headers = http.Headers(host=f"{host}:{port}")
        request.headers[TOKEN_HEADER] = origin.token
        context(flow).forwarded_to = (host, port)
        flow.metadata[STREAMED] = headers

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        headers = flow.metadata.get(STREAMED)
        if headers is None or flow.response is None:
            return
        if flow.response.status_code != 200:
            return  # answered in `response`, whole
        flow.response.stream = True
        flow.response.headers.update(headers)  # sent before the `response` hook runs

    def response(self, flow: http.HTTPFlow) -> None:
        if STREAMED in flow.metadata and flow.response and flow.response.status_code != 200:
            refuse(flow, gone())  # deleted between the check and the stream
