"""Where caught calls go: the in-process simulator (free) or a URL the developer names."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """`sim`, or an http(s) base URL (a NextAPI edge, or a Seedance host named on purpose)."""

    url: str | None = None  # None: the simulator, started in-process on a free loopback port

    @property
    def is_sim(self) -> bool:
        return self.url is None

    @property
    def parts(self) -> urllib.parse.SplitResult:
        assert self.url is not None
        return urllib.parse.urlsplit(self.url)

    @property
    def scheme(self) -> str:
        return self.parts.scheme

    @property
    def host(self) -> str:
        return self.parts.hostname or ""

    @property
    def port(self) -> int:
        parts = self.parts
        return parts.port or (443 if parts.scheme == "https" else 80)


SIM = Target()


def banner(target: Target, key: str | None, seedance_hosts: tuple[str, ...]) -> str:
    """The first line printed: what answers, and whether it costs money."""
    if target.is_sim:
        return "target: simulator (free: nothing leaves this machine, any key is accepted)"
    if target.host in seedance_hosts:
        who = "Seedance itself: every task is billed to the app's own upstream key"
    elif key:
        who = f"a NextAPI edge: calls are metered and charged to key {mask_key(key)}"
    else:
        who = "calls are relayed with the app's own key"
    return f"target: {target.url} COSTS MONEY ({who})"


def mask_key(key: str) -> str:
    """Enough of a key to recognise it, never its secret: `nk_test_<key id>_…`."""
    parts = key.split("_")
    if len(parts) >= 4 and parts[0] == "nk":
        return "_".join(parts[:3]) + "_…"
    return key[:4] + "…"
