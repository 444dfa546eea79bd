"""The edge's client connections: strict HTTP/1 framing and time limits on every one of them.

Each client connection is read by `proxy/connections/http1server.py`'s guarded HTTP/1 layer,
installed here from mitmproxy's `next_layer` hook (after mitmproxy's own NextLayer addon chose
the layers). Before that layer starts there is no HTTP yet (a connection that sends nothing, a
TLS handshake that never ends): this addon closes such a connection if its HTTP layer has not
started `nextapi_request_header_timeout` seconds after it opened; from then on the layer keeps
time itself.

It also caps the connections one client address holds open (`nextapi_max_connections_per_address`,
counted by `proxy/connections/per_address.py`): past it a new connection is answered 503 (plain
HTTP) and closed before mitmproxy reads it. And it makes mitmproxy's listening sockets hold a
burst of new connections (`proxy/connections/backlog.py`) rather than drop their SYNs.

Loaded as a child of the Edge addon, so every way the chain runs (`run_proxy.py`, each of its
`--workers`, `mitmdump -s addons/gateway.py`) reads its clients through it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mitmproxy import connection, ctx, exceptions
from mitmproxy.proxy.layer import NextLayer
from mitmproxy.proxy.layers.http import HttpLayer

from proxy.connections import backlog
from proxy.connections.http1server import HeadLimits, TimeLimits, error_response, install
from proxy.connections.per_address import ConnectionsPerAddress, Refusal
from proxy.context import new_request_id
from proxy.core import netaddr
from proxy.descriptors import client_connection_budget
from proxy.errors import EdgeError
from proxy.options import BY_MITM, declare

log = logging.getLogger(__name__)

# Client connections' time limits, in seconds, and a request head's sizes (checked while it
# arrives: past one, 431 and the connection closed), in TimeLimits' and HeadLimits' order.
_LIMITS = (
    "nextapi_request_header_timeout",
    "nextapi_request_body_timeout",
    "nextapi_keepalive_timeout",
)
_HEAD_LIMITS = (
    "nextapi_max_request_line_bytes",
    "nextapi_max_header_bytes",
    "nextapi_max_header_fields",
)


OVER_CAP = EdgeError(
    503,
    "TooManyConnections",
    "This address holds too many open connections to the edge: reuse them (keep-alive) or "
    "close some.",
    headers={"Retry-After": "1"},
)
AT_BUDGET = EdgeError(
    503,
    "ServiceUnavailable",
    "The edge holds as many connections as it can right now: retry shortly.",
    headers={"Retry-After": "1"},
)


class Connections:
    def __init__(self) -> None:
        self.limits = TimeLimits(*(BY_MITM[name].default for name in _LIMITS))
        self.head_limits = HeadLimits()
        self.per_address = ConnectionsPerAddress()
        self.counted: dict[str, str] = {}  # client id: the key its address is counted under
        # Connections whose HTTP layer has not started yet: their deadline.
        self.before_http: dict[str, asyncio.TimerHandle] = {}
        self.closing: set[asyncio.Task[None]] = set()

    def load(self, loader: Any) -> None:
        # (After launch/runtime.py raised the open-files limit, if it runs the process.)
        self.per_address.total_cap = client_connection_budget()
        # The time limits are whole seconds, as mitmproxy's own tcp_timeout.
        declare(loader, *_LIMITS, *_HEAD_LIMITS, "nextapi_max_connections_per_address")

    def running(self) -> None:
        # mitmproxy listens before this hook (run_proxy.py, mitmdump -s; --workers' shared port
        # already has this backlog).
        proxyserver: Any = ctx.master.addons.get("proxyserver")
        if proxyserver is not None and backlog.deepen_listening(proxyserver):
            log.info("listen backlog: %d", backlog.LISTEN_BACKLOG)

    def configure(self, updated: set[str]) -> None:
        if updated & set(_LIMITS):
            # (Their bounds are checked by the OptionCheck addon, first in the chain.)
            values = [getattr(ctx.options, name) for name in _LIMITS]
            self.limits = TimeLimits(*values)
        if updated & set(_HEAD_LIMITS):
            sizes = [getattr(ctx.options, name) for name in _HEAD_LIMITS]
            self.head_limits = HeadLimits(*sizes)
        if "nextapi_max_connections_per_address" in updated:
            self.per_address.cap = ctx.options.nextapi_max_connections_per_address
        if "nextapi_trusted_proxies" in updated:
            entries = ctx.options.nextapi_trusted_proxies.split(",")
            self.per_address.exempt = netaddr.parse_networks(e for e in entries if e.strip())
        if {"http2", "certs"} & updated and ctx.options.http2 and getattr(ctx.options, "certs", []):
            # A TLS client could negotiate HTTP/2, which this guard does not read.
            raise exceptions.OptionsError(
                "the edge reads clients over HTTP/1.1 only: with certificates, set http2=false"
            )

    def client_connected(self, client: connection.Client) -> None:
        key = self.per_address.admit(client.peername[0])
        if isinstance(key, Refusal):
            self._refuse(client, key)
            return
        self.counted[client.id] = key
        loop = asyncio.get_running_loop()
        self.before_http[client.id] = loop.call_later(self.limits.header, self._overdue, client.id)

    def client_disconnected(self, client: connection.Client) -> None:
        self._http_started(client.id)
        if (key := self.counted.pop(client.id, None)) is not None:
            self.per_address.release(key)
        # mitmproxy (12.2.3, ConnectionHandler.handle_connection) closes the client's socket
        # only when its reader ends by itself: cancelled while it waits for the event lock (a
        # CloseConnection from another task, e.g. a refused head after a hook), it skips the
        # close and the socket stays open for as long as the client keeps sending.
        writer = self._writer(client)
        if writer is not None and not writer.is_closing():
            writer.close()

    def _refuse(self, client: connection.Client, refusal: Refusal) -> None:
        if refusal is Refusal.ADDRESS:
            client.error, answer = "too many connections from this address", OVER_CAP
        else:
            client.error, answer = "the edge holds all the connections it can", AT_BUDGET
        # mitmproxy closes the connection on the error, before reading any of it.
        writer = self._writer(client)
        if writer is not None and not getattr(ctx.options, "certs", []):
            # Plain HTTP: a sentence before the close says why (a TLS client could not read it).
            writer.write(error_response(answer, new_request_id()))
        if line := self.per_address.report():
            log.warning(line)

    @staticmethod
    def _writer(client: connection.Client) -> Any:
        proxyserver: Any = ctx.master.addons.get("proxyserver")
        handler = proxyserver.connections.get(client.id) if proxyserver else None
        io = handler.transports.get(client) if handler is not None else None
        return getattr(io, "writer", None)

    def next_layer(self, nextlayer: NextLayer) -> None:
        if nextlayer.layer is None:
            # Under `mitmdump -s` a script sees this hook before mitmproxy's NextLayer addon
            # does: let that addon choose now (it then leaves the choice alone).
            chooser: Any = ctx.master.addons.get("nextlayer")
            if chooser is not None:
                chooser.next_layer(nextlayer)
        layer = nextlayer.layer
        while layer is not None and not isinstance(layer, HttpLayer):
            layer = getattr(layer, "child_layer", None)  # through the TLS layers
        if layer is not None:
            client_id = nextlayer.context.client.id
            install(layer, self.limits, lambda: self._http_started(client_id), self.head_limits)

    def _http_started(self, client_id: str) -> None:
        timer = self.before_http.pop(client_id, None)
        if timer is not None:
            timer.cancel()

    def _overdue(self, client_id: str) -> None:
        self.before_http.pop(client_id, None)
        proxyserver: Any = ctx.master.addons.get("proxyserver")
        handler = proxyserver.connections.get(client_id) if proxyserver else None
        if handler is None:
            return
        log.debug("closing a client connection: no HTTP request began in time")
        # mitmproxy's own way to close a connection for inactivity.
        task = asyncio.ensure_future(handler.on_timeout())
        self.closing.add(task)
        task.add_done_callback(self.closing.discard)
