"""Last in the chain: a request that reaches here without an answer is refused with a 500.

mitmproxy logs an addon's exception and carries on with the flow; in reverse mode that would
relay the request itself, unauthenticated and with the customer's key. Every request the chain
handles gets its answer from an addon (a refusal or the relay's response), so a flow with none
means something broke, and the edge fails closed."""

from __future__ import annotations

import logging

from mitmproxy import http

from proxy.context import METADATA_KEY, RequestContext, new_request_id
from proxy.errors import EdgeError

log = logging.getLogger(__name__)


class FailClosed:
    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response:
            return
        rctx = flow.metadata.get(METADATA_KEY)
        if isinstance(rctx, RequestContext) and rctx.forwarded_to is not None:
            # An addon sent it on to one of the edge's own servers; nothing else may have
            # changed where it goes since.
            if (flow.request.host, flow.request.port) == rctx.forwarded_to:
                return
        request_id = rctx.request_id if isinstance(rctx, RequestContext) else new_request_id()
        log.error("no addon answered %s %s; refusing it", flow.request.method, request_id)
        error = EdgeError(500, "InternalServiceError", "The gateway failed to handle the request.")
        flow.response = http.Response.make(500, error.body(), error.response_headers(request_id))
