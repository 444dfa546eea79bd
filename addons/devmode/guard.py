"""The last word before a caught call leaves: it goes to the target or nowhere. A call still
addressed to an intercepted host that the target does not name (the router failed, or an
addon raised) is answered 502 here, so a paid Seedance host is reached only on purpose."""

from __future__ import annotations

import urllib.parse

from mitmproxy import ctx, http

from addons.devmode import CAUGHT
from addons.devmode.respond import answer
from proxy.errors import EdgeError


class SeedanceGuard:
    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or CAUGHT not in flow.metadata:
            return
        target = urllib.parse.urlsplit(ctx.options.dev_target or "")
        destination = flow.request.host.lower().rstrip(".")
        if destination != (target.hostname or "").lower():
            message = (
                f"The dev proxy did not send this call to {flow.metadata[CAUGHT]}: it was not "
                "routed to the target, and an intercepted host is reached only when --target "
                "names it."
            )
            answer(flow, EdgeError(502, "DevProxyNotRouted", message), "refused")
