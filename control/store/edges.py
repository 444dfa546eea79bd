"""The edges that talk to this control plane, as they last reported themselves.

An edge apart says who it is and what only it knows in headers on each call it makes
(`/v1/edge/snapshot`, `/v1/edge/usage`): its id, the policy snapshot version it serves, how many
spool segments of usage it has not shipped yet, and its counters' backend (see
`proxy.remote.EdgeReport`). The control plane keeps the last report per edge in memory, not in
SQLite: it is liveness, stale the moment it is written, rebuilt within one long poll (20 s) of a
restart, and writing it to the database on every poll and batch would only add writes to the
single writer. An edge of an older version sends none of these headers: it is still listed, by
its address, with the version it asked after (`after`). The edge embedded in the control plane's
own process (`--role all`) reports through a callable instead of HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

# The headers an edge sends (proxy/remote.py writes them).
EDGE_ID = "x-edge-id"
SNAPSHOT_VERSION = "x-edge-snapshot-version"
SPOOL_BACKLOG = "x-edge-spool-backlog"
COUNTERS = "x-edge-counters"

CONNECTED_SECONDS = 60.0  # seen within this: connected (the long poll returns every 20 s)
FORGET_SECONDS = 86400.0  # not listed any more after a day of silence
MAX_EDGES = 1000  # a bound on memory whatever the callers claim to be
MAX_ID_CHARS = 128


@dataclass(slots=True)
class EdgeSeen:
    id: str
    address: str | None
    last_seen: float
    snapshot_version: int | None
    spool_backlog: int | None  # spool segments not yet acknowledged by the control plane
    counters: str | None  # `memory`, `redis ok` or `redis unreachable`
    reports: bool  # sent the X-Edge-* headers (an older edge does not)

    def as_dict(self, now: float) -> dict[str, Any]:
        return asdict(self) | {"connected": now - self.last_seen <= CONNECTED_SECONDS}


def _number(value: str | None) -> int | None:
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()[:MAX_ID_CHARS]
    return value if value and value.isprintable() else None


class EdgeRegistry:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._seen: dict[str, EdgeSeen] = {}
        # The edge in this process (`--role all`): a callable returning its report.
        self.local: Callable[[], Mapping[str, Any]] | None = None

    def seen(
        self, headers: Mapping[str, str], address: str | None, token_id: str, after: int | None
    ) -> None:
        """Record one call of an edge, from its headers (or, without them, its address)."""
        reported = _text(headers.get(EDGE_ID))
        edge_id = reported or f"{address or 'unknown'} (token {token_id})"
        version = _number(headers.get(SNAPSHOT_VERSION))
        entry = EdgeSeen(
            id=edge_id,
            address=address,
            last_seen=self.clock(),
            snapshot_version=version if version is not None else after,
            spool_backlog=_number(headers.get(SPOOL_BACKLOG)),
            counters=_text(headers.get(COUNTERS)),
            reports=reported is not None,
        )
        self._seen.pop(edge_id, None)  # re-inserted last: the dict stays oldest-seen first
        self._seen[edge_id] = entry
        while len(self._seen) > MAX_EDGES:
            del self._seen[next(iter(self._seen))]

    def edges(self) -> list[dict[str, Any]]:
        """Every edge heard from within a day, the embedded one first, then newest first."""
        now = self.clock()
        for edge_id in [k for k, v in self._seen.items() if now - v.last_seen > FORGET_SECONDS]:
            del self._seen[edge_id]
        listed = [v.as_dict(now) for v in reversed(self._seen.values())]
        if self.local is not None:
            local = dict(self.local())
            listed.insert(0, {"address": None, "reports": True} | local | {"connected": True})
            listed[0]["last_seen"] = now
        return listed
