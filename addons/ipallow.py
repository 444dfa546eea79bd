"""IP allowlists of the key and of its org (IPv4, IPv6, CIDR); both apply."""

from __future__ import annotations

from mitmproxy import http

from addons.respond import context, refuse
from proxy.auth.security_marks import SecurityMark
from proxy.core import netaddr
from proxy.core.security_events import Reason
from proxy.errors import access_denied


class IpAllow:
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response:
            return
        ctx = context(flow)
        if ctx.identity is None:  # a public route (callbacks): no customer, no allowlist
            return
        address = ctx.client_ip
        for networks in (ctx.identity.org.allowed_networks, ctx.identity.key.allowed_networks):
            if networks and (address is None or not netaddr.allowed(networks, address)):
                ctx.security = SecurityMark(Reason.IP_NOT_ALLOWED, ctx.identity.org.org_id)
                refuse(flow, access_denied("The client address is not in the allowlist."))
                return
