"""How many client connections one address holds open (nginx's `limit_conn`, HAProxy's
`conn_cur`): past the cap, a new connection from that address is refused at once, so that one
client cannot hold the edge's descriptors. All addresses together are held to the process's
budget (proxy/descriptors.py: its open-files limit less a reserve), so that a flood from many
addresses leaves descriptors for the control plane, the upstream and the files.

IPv6 clients count by their /64, which one subscriber usually holds whole (nginx's
`$binary_remote_addr` would let a /64 hold 2^64 times the cap). Addresses of trusted proxies
are not capped: every client behind them shares one.
"""

from __future__ import annotations

import enum
import ipaddress
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from proxy.core import netaddr

DEFAULT_CAP = 256  # nginx has no default; Envoy's overload manager and HAProxy sit near this
REPORT_EVERY = 10.0  # seconds between two log lines about refused connections


def counted_as(address: str) -> str:
    """The key `address` is counted under: itself (IPv4), its /64 (IPv6)."""
    parsed = netaddr.parse_address(address)
    if parsed is None:
        return address
    if parsed.version == 6:
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


class Refusal(enum.Enum):
    ADDRESS = "address"  # the address holds `cap` connections
    EDGE = "edge"  # the edge holds `total_cap`


@dataclass
class ConnectionsPerAddress:
    cap: int = DEFAULT_CAP  # 0: no cap
    total_cap: int = 0  # every address together; 0: no cap
    exempt: Sequence[netaddr.IPNetwork] = ()
    clock: Callable[[], float] = time.monotonic
    open: Counter[str] = field(default_factory=Counter)
    total: int = 0
    # Refused since the last report, by address; and when that report was.
    refused: Counter[str] = field(default_factory=Counter)
    refused_for: Counter[Refusal] = field(default_factory=Counter)
    reported_at: float = float("-inf")

    def admit(self, address: str) -> str | Refusal:
        """The key the connection was counted under (give it back to `release`), or why it is
        refused."""
        key = counted_as(address)
        refusal = None
        if self.total_cap and self.total >= self.total_cap:
            refusal = Refusal.EDGE
        elif self.cap and self.open[key] >= self.cap and not self._exempt(address):
            refusal = Refusal.ADDRESS
        if refusal is not None:
            self.refused[key] += 1
            self.refused_for[refusal] += 1
            return refusal
        self.open[key] += 1
        self.total += 1
        return key

    def release(self, key: str) -> None:
        self.total -= 1
        self.open[key] -= 1
        if self.open[key] <= 0:
            del self.open[key]

    def report(self) -> str | None:
        """A sentence about the connections refused since the last one, at most one every
        REPORT_EVERY seconds (a flood is one line, not one a connection)."""
        if not self.refused or self.clock() - self.reported_at < REPORT_EVERY:
            return None
        self.reported_at = self.clock()
        total = sum(self.refused.values())
        reasons = []
        if count := self.refused_for[Refusal.ADDRESS]:
            reasons.append(f"{count} over {self.cap} from one address")
        if count := self.refused_for[Refusal.EDGE]:
            reasons.append(f"{count} with the edge at its {self.total_cap}")
        worst = ", ".join(f"{key} ({count})" for key, count in self.refused.most_common(3))
        self.refused.clear()
        self.refused_for.clear()
        return f"refused {total} client connections ({'; '.join(reasons)}); most from {worst}"

    def _exempt(self, address: str) -> bool:
        parsed = netaddr.parse_address(address)
        return parsed is not None and netaddr.contains(self.exempt, parsed)
