"""Connections per client address: the cap, IPv6 /64s, trusted proxies, one report a while."""

from __future__ import annotations

from proxy.connections.per_address import (
    REPORT_EVERY,
    ConnectionsPerAddress,
    Refusal,
    counted_as,
)
from proxy.core import netaddr


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_holds_up_to_the_cap_and_gets_room_back_as_it_closes() -> None:
    counter = ConnectionsPerAddress(cap=3)
    keys = [counter.admit("198.51.100.7") for _ in range(3)]
    assert keys == ["198.51.100.7"] * 3
    assert counter.admit("198.51.100.7") is Refusal.ADDRESS
    assert counter.admit("198.51.100.8") is not None  # another address is not touched
    counter.release("198.51.100.7")
    assert counter.admit("198.51.100.7") == "198.51.100.7"
    for _ in range(3):
        counter.release("198.51.100.7")
    assert "198.51.100.7" not in counter.open  # nothing kept for an address gone


def test_ipv6_clients_count_by_their_64_and_mapped_ipv4_as_ipv4() -> None:
    prefix = "2001:db8:1:2::/64"
    assert counted_as("2001:db8:1:2::5") == counted_as("2001:db8:1:2:ffff::1") == prefix
    assert counted_as("2001:db8:1:3::5") != counted_as("2001:db8:1:2::5")
    assert counted_as("::ffff:192.0.2.1") == "192.0.2.1"
    counter = ConnectionsPerAddress(cap=2)
    assert counter.admit("2001:db8::1") and counter.admit("2001:db8::2")
    assert counter.admit("2001:db8::3") is Refusal.ADDRESS


def test_zero_is_no_cap() -> None:
    counter = ConnectionsPerAddress(cap=0)
    assert all(counter.admit("192.0.2.1") for _ in range(10_000))


def test_trusted_proxies_are_not_capped() -> None:
    counter = ConnectionsPerAddress(cap=1, exempt=netaddr.parse_networks(["10.0.0.0/8"]))
    assert all(counter.admit("10.1.2.3") for _ in range(50))
    assert counter.admit("192.0.2.1") == "192.0.2.1"
    assert counter.admit("192.0.2.1") is Refusal.ADDRESS


def test_refusals_are_reported_at_most_once_a_while_with_their_count() -> None:
    clock = Clock()
    counter = ConnectionsPerAddress(cap=1, clock=clock)
    counter.admit("192.0.2.1")
    counter.admit("192.0.2.1")
    first = counter.report()
    assert first is not None and "refused 1 " in first and "192.0.2.1 (1)" in first
    assert "1 over 1 from one address" in first
    for _ in range(500):
        counter.admit("192.0.2.1")
        assert counter.report() is None  # within REPORT_EVERY
    clock.now += REPORT_EVERY
    later = counter.report()
    assert later is not None and "refused 500 " in later
    assert counter.report() is None  # nothing new refused


def test_all_addresses_together_are_held_to_the_total_cap() -> None:
    counter = ConnectionsPerAddress(cap=10, total_cap=3)
    keys = [counter.admit(f"192.0.2.{i}") for i in range(3)]
    assert counter.admit("192.0.2.9") is Refusal.EDGE
    assert counter.admit("10.0.0.1") is Refusal.EDGE
    report = counter.report()
    assert report is not None and "2 with the edge at its 3" in report
    key = keys[0]
    assert isinstance(key, str)
    counter.release(key)
    assert counter.admit("192.0.2.9") == "192.0.2.9"
    assert counter.total == 3
