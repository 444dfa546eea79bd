"""IP allowlists (IPv4, IPv6, CIDR) and the client address behind trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

type IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
type IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Parse addresses or CIDRs; raises ValueError naming the bad entry."""
    networks = []
    for entry in entries:
        if not isinstance(entry, str):
            raise ValueError(f"not an IP address or CIDR: {entry!r}")
        try:
            network = ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            raise ValueError(f"not an IP address or CIDR: {entry!r}") from None
        networks.append(_unmap_network(network))
    return tuple(networks)


def parse_address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None
    return _unmap(address)


def _unmap(address: IPAddress) -> IPAddress:
    # A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d; allowlists say a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _unmap_network(network: IPNetwork) -> IPNetwork:
    if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped:
        prefix = max(network.prefixlen - 96, 0)
        return ipaddress.IPv4Network((network.network_address.ipv4_mapped, prefix), strict=False)
    return network


def contains(networks: Sequence[IPNetwork], address: IPAddress) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def allowed(networks: Sequence[IPNetwork], address: IPAddress) -> bool:
    """An empty allowlist allows every address."""
    return not networks or contains(networks, address)


def client_address(
    peer: str, forwarded_for: str | None, trusted_proxies: Sequence[IPNetwork]
) -> IPAddress | None:
    """The client's address: the peer's, unless the peer is a trusted proxy, in which case the
    right-most X-Forwarded-For entry that is not itself a trusted proxy."""
    address = parse_address(peer)
    if address is None or not forwarded_for or not contains(trusted_proxies, address):
        return address
    for hop in reversed(forwarded_for.split(",")):
        hop_address = parse_address(hop)
        if hop_address is None:
            return address  # a garbled header: stop at the last hop we can vouch for
        address = hop_address
        if not contains(trusted_proxies, address):
            return address
    return address
