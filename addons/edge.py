"""First in the chain: request id, client address, route check, body size and trailers.

Only the Seedance task routes are forwarded; anything else gets a 404 from the edge itself and,
with `connection_strategy=lazy`, no upstream connection is ever opened for it. The Connections
addon (strict HTTP/1 framing, connection time limits) comes with it as its child.
"""

from __future__ import annotations

from mitmproxy import ctx, http

from addons.connections import Connections
from addons.respond import refuse
from proxy.auth.authenticator import bearer
from proxy.connections.http1server import EARLY_REQUEST_ID, malformed
from proxy.context import METADATA_KEY, RequestContext, new_request_id
from proxy.core import keys, netaddr
from proxy.core.seedance import routes
from proxy.errors import access_denied, not_found, request_too_large
from proxy.options import declare


class Edge:
    def __init__(self) -> None:
        self.trusted_proxies: tuple[netaddr.IPNetwork, ...] = ()
        # A child rather than a link of the chain, so that nothing that loads the chain can
        # leave it out.
        self.addons = [Connections()]

    def load(self, loader) -> None:
        declare(
            loader,
            "nextapi_max_body_bytes",
            "nextapi_require_tls",
            "nextapi_trusted_proxies",
        )

    def configure(self, updated: set[str]) -> None:
        if "nextapi_trusted_proxies" in updated:  # (checked by the OptionCheck addon)
            entries = [e for e in ctx.options.nextapi_trusted_proxies.split(",") if e.strip()]
            self.trusted_proxies = netaddr.parse_networks(entries)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        request = flow.request
        client = netaddr.client_address(
            flow.client_conn.peername[0],
            ",".join(request.headers.get_all("x-forwarded-for")) or None,
            self.trusted_proxies,
        )
        route = routes.match(request.method, request.path.split("?", 1)[0])
        # An id the connection layer already gave an answer (a malformed body) stays the id.
        request_id = flow.metadata.pop(EARLY_REQUEST_ID, None) or new_request_id()
        rctx = RequestContext(request_id, route, client)
        flow.metadata[METADATA_KEY] = rctx
        # A parseable key makes the request one to record, whatever happens next. The key id is
        # not verified here: only a verified key ties the record to an org.
        parsed = keys.parse_key(bearer(request.headers.get("authorization")) or "")
        rctx.key_id = parsed.key_id if parsed else None
        if flow.response:
            return
        if ctx.options.nextapi_require_tls and not flow.client_conn.tls_established:
            refuse(flow, access_denied("This edge accepts HTTPS (TLS 1.3) only."))
            return
        if route is None:
            refuse(flow, not_found(f"No route for {request.method} {request.path.split('?')[0]}."))
            return
        limit = ctx.options.nextapi_max_body_bytes
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            refuse(flow, request_too_large(limit))

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response:
            return
        if flow.request.trailers:
            # Nothing upstream would see them (the relay frames the body itself), and dropping
            # fields the client meant to send is worse than saying so.
            refuse(flow, malformed("Trailer fields are not accepted in a request."))
            return
        # A chunked body has no length up front: check what was read.
        limit = ctx.options.nextapi_max_body_bytes
        if len(flow.request.raw_content or b"") > limit:
            refuse(flow, request_too_large(limit))

    def response(self, flow: http.HTTPFlow) -> None:
        rctx = flow.metadata.get(METADATA_KEY)
        if flow.response is not None and isinstance(rctx, RequestContext):
            flow.response.headers["X-Request-Id"] = rctx.request_id
