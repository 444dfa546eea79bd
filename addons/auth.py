"""Customer authentication with `Authorization: Bearer nk_…` keys.

Runs at request headers, so a refused request's body is never parsed and nothing is relayed.
"""

from __future__ import annotations

from mitmproxy import http

from addons.respond import context, refuse
from proxy.authn import AuthFailure
from proxy.errors import authentication_error
from proxy.services import EdgeServices


class Auth:
    def __init__(self, services: EdgeServices) -> None:
        self.services = services

    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response:
            return
        result = await self.services.auth.authenticate(flow.request.headers.get("authorization"))
        if isinstance(result, AuthFailure):
            refuse(flow, authentication_error(result.value))
            return
        context(flow).identity = result
