"""The edge's listen backlog: how many connections the kernel completes and holds for the edge
before it accepts them.

mitmproxy listens with asyncio's default, 100. A burst of connects past that while the event loop
is busy (a flood of idle connections, or every idle one reopened after the header timeout)
overflowed it, and Linux then drops SYNs: a customer's new connection waited out the 1 s SYN
retransmit (measured: 1,040 ms against 4 during a burst of 1,000), and connections their clients
saw as open were never the edge's. So once mitmproxy listens (the `running` hook, in every way
the chain runs), its sockets are listened on again with LISTEN_BACKLOG: Linux takes a new backlog
on a listening socket, and mitmproxy's choice of addresses and ports is left as it made it.
"""

from __future__ import annotations

import asyncio
from typing import Any

# As --workers' shared port (proxy/workers.py); the kernel caps it at net.core.somaxconn.
LISTEN_BACKLOG = 1024


def deepen(servers: list[Any], backlog: int = LISTEN_BACKLOG) -> int:
    """Listen again with `backlog` on every socket of `servers` (asyncio ones: UDP and WireGuard
    servers have no backlog); how many sockets."""
    deepened = 0
    for server in servers:
        if isinstance(server, asyncio.Server):
            for transport_socket in server.sockets:
                with transport_socket.dup() as sock:  # the same socket; only the dup is closed
                    sock.listen(backlog)
                deepened += 1
    return deepened


def deepen_listening(proxyserver: Any, backlog: int = LISTEN_BACKLOG) -> int:
    """`deepen` the servers mitmproxy's Proxyserver addon runs; how many sockets. (Each server
    instance keeps its asyncio servers in `_servers`: mitmproxy 12.2.3, proxy/mode_servers.py.)"""
    return sum(deepen(getattr(i, "_servers", []), backlog) for i in proxyserver.servers)
