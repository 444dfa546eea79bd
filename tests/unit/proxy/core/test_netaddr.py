import ipaddress

import pytest

from proxy.core import netaddr


def test_allowlist_ipv4_ipv6_and_cidr() -> None:
    nets = netaddr.parse_networks(["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"])
    assert netaddr.allowed(nets, ipaddress.ip_address("10.1.2.3"))
    assert netaddr.allowed(nets, ipaddress.ip_address("192.0.2.7"))
    assert not netaddr.allowed(nets, ipaddress.ip_address("192.0.2.8"))
    assert netaddr.allowed(nets, ipaddress.ip_address("2001:db8::1"))
    assert not netaddr.allowed(nets, ipaddress.ip_address("2001:db9::1"))


def test_empty_allowlist_allows_all() -> None:
    assert netaddr.allowed((), ipaddress.ip_address("203.0.113.1"))


def test_ipv4_mapped_ipv6_peer_matches_ipv4_rule() -> None:
    nets = netaddr.parse_networks(["127.0.0.1"])
    address = netaddr.parse_address("::ffff:127.0.0.1")
    assert address == ipaddress.ip_address("127.0.0.1")
    assert address is not None and netaddr.allowed(nets, address)


@pytest.mark.parametrize("bad", ["10.0.0.300", "foo", "10.0.0.0/33", "", 5])
def test_bad_entries_are_refused(bad) -> None:
    with pytest.raises(ValueError):
        netaddr.parse_networks([bad])


def test_forwarded_for_ignored_from_untrusted_peer() -> None:
    trusted = netaddr.parse_networks(["10.0.0.0/8"])
    got = netaddr.client_address("203.0.113.9", "198.51.100.1", trusted)
    assert got == ipaddress.ip_address("203.0.113.9")


def test_forwarded_for_honoured_from_trusted_proxy_chain() -> None:
    trusted = netaddr.parse_networks(["10.0.0.0/8"])
    # client, then an untrusted hop the client made up, then our proxies
    header = "1.1.1.1, 198.51.100.1, 10.0.0.2"
    got = netaddr.client_address("10.0.0.1", header, trusted)
    assert got == ipaddress.ip_address("198.51.100.1")


def test_garbled_forwarded_for_stops_at_last_trusted_hop() -> None:
    trusted = netaddr.parse_networks(["10.0.0.0/8"])
    got = netaddr.client_address("10.0.0.1", "nonsense", trusted)
    assert got == ipaddress.ip_address("10.0.0.1")
