"""Where a webhook may be sent: an http(s) URL whose host is, or resolves to, public unicast
addresses only (no loopback, private, link-local or metadata address, also not inside an IPv6
form), unless private addresses are allowed. The delivery worker (control/jobs/delivery.py)
connects to the very addresses checked here, so a rebinding DNS gets no second lookup."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable

import httpx

ADDRESS_REFUSED = "address not allowed"
URL_REFUSED = "URL not allowed"

type Resolver = Callable[[str, int], Awaitable[list[str]]]
type IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
NAT64 = ipaddress.ip_network("64:ff9b::/96")


def address_allowed(text: str) -> bool:
    """Whether a webhook may be sent to this address: public unicast only (IPv4 inside IPv6
    forms, such as mapped, 6to4, Teredo and NAT64 addresses, is judged by its IPv4 address)."""
    try:
        address: IPAddress = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if address.teredo is not None:
            embedded = address.teredo[1]
        elif address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return address_allowed(str(embedded))
    return not (
        address in METADATA
        or not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class Refused(Exception):
    """The URL or its addresses may not be delivered to (no connection was made)."""


def destination(text: str) -> tuple[httpx.URL, str, int]:
    """The endpoint's URL, host and port; raises Refused unless it is an http(s) URL with a host."""
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL:
        raise Refused(URL_REFUSED) from None
    if url.scheme not in ("http", "https") or not url.raw_host:
        raise Refused(URL_REFUSED)
    host = url.raw_host.decode("ascii")
    return url, host, url.port or (443 if url.scheme == "https" else 80)


async def allowed_addresses(
    host: str, port: int, resolver: Resolver, *, allow_private: bool
) -> list[str]:
    """The addresses to connect to, every one of them allowed; raises Refused if any is not."""
    try:
        literal = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        addresses = await resolver(host, port)
    else:
        addresses = [str(literal)]
    if not addresses:
        raise Refused(ADDRESS_REFUSED)
    if not allow_private and not all(address_allowed(a) for a in addresses):
        raise Refused(ADDRESS_REFUSED)
    return addresses
