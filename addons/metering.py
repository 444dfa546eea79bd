"""One usage record per request that reached the edge with a parseable key.

Creates and deletes are answered only once their record is on disk (the spool's group commit);
other records are flushed within the spool's interval.
"""

from __future__ import annotations

from mitmproxy import http

from proxy.context import METADATA_KEY, RequestContext
from proxy.services import EdgeServices
from proxy.usage import build_record


class Metering:
    def __init__(self, services: EdgeServices) -> None:
        self.services = services

    async def response(self, flow: http.HTTPFlow) -> None:
        assert flow.response
        await self._record(flow, flow.response.status_code, len(flow.response.raw_content or b""))

    async def error(self, flow: http.HTTPFlow) -> None:
        # The client went away before its answer: still a request that reached us.
        await self._record(flow, 499, 0)

    async def _record(self, flow: http.HTTPFlow, status: int, bytes_out: int) -> None:
        ctx = flow.metadata.get(METADATA_KEY)
        spool = self.services.spool
        if not isinstance(ctx, RequestContext) or ctx.recorded or ctx.key_id is None or not spool:
            return
        ctx.recorded = True
        record = build_record(
            ctx,
            method=flow.request.method,
            status=status,
            bytes_in=len(flow.request.raw_content or b""),
            bytes_out=bytes_out,
        )
        if ctx.route is not None and ctx.route.durable:
            await spool.append_durable(record)
        else:
            spool.append(record)
