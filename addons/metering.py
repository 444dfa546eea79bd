"""One usage record per request that reached the edge with a parseable key, and one security
event per request refused for authentication or access (whether its key parsed or not).

Creates and deletes are answered only once their records are on disk (the spool's group commit);
other records are flushed within the spool's interval.
"""

from __future__ import annotations

from mitmproxy import http

from proxy.context import METADATA_KEY, RequestContext
from proxy.services import EdgeServices
from proxy.usage.builders import build_record, build_security_event


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
        if not isinstance(ctx, RequestContext) or ctx.recorded or not spool:
            return
        if ctx.key_id is None and ctx.security is None:
            return  # neither a customer's request nor a refusal worth keeping
        ctx.recorded = True
        if ctx.security is not None:
            # Buffered first: a durable usage record below fsyncs it along with itself.
            spool.append(build_security_event(ctx, status))
        if ctx.key_id is None:
            return
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
