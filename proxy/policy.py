"""The edge's in-memory policy snapshot: orgs and keys as the control plane last published them.

The control plane builds the snapshot as plain data (`to_wire` shape, msgpack-able) after every
change; the edge swaps it in whole, so a request sees either the old or the new policy, never a mix.
The hot path reads only this; it never queries the database. The model catalog travels in it
too, so a new model or price is live on every edge as soon as the snapshot arrives.

An edge apart also keeps its last snapshot on disk (proxy/policy_file.py) and, restarted while
its control plane is away, serves from it (`PolicyStore.restore`). The store knows when the
control plane last vouched for what it holds (`confirmed_at`) and, for an edge apart, how long it
may go on deciding without hearing from it (`max_age`): past that, and before it ever had a
snapshot, `current()` is False and keys are answered "cannot check" (503), never "invalid" (401).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from proxy.core.netaddr import IPNetwork, parse_networks
from proxy.core.seedance.catalog import Catalog


@dataclass(frozen=True, slots=True)
class OrgPolicy:
    org_id: str
    status: str  # active | suspended | closed
    allowed_networks: tuple[IPNetwork, ...] = ()
    rate_limit: dict[str, int] = field(default_factory=dict)
    spend_limit: dict[str, Any] | None = None
    webhooks: dict[str, str] = field(default_factory=dict)  # registered URL -> endpoint id
    video_retention_days: int = 7  # how long the gateway's copies of its videos are kept


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    key_id: str
    org_id: str
    status: str  # active | revoked | suspended
    secret_hash: str
    previous_secret_hash: str | None = None
    previous_valid_until: float | None = None  # unix seconds: end of a rotation's grace period
    expires_at: float | None = None
    allowed_networks: tuple[IPNetwork, ...] = ()
    models: frozenset[str] | None = None  # None: every model
    rate_limit: dict[str, int] = field(default_factory=dict)
    spend_limit: dict[str, Any] | None = None

    def valid_hashes(self, now: float) -> tuple[str, ...]:
        """The Argon2id hashes a presented key may match right now."""
        if (
            self.previous_secret_hash
            and self.previous_valid_until is not None
            and now < self.previous_valid_until
        ):
            return (self.secret_hash, self.previous_secret_hash)
        return (self.secret_hash,)


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int = 0
    epoch: str = ""  # the control plane's database identity: versions count within one epoch
    orgs: dict[str, OrgPolicy] = field(default_factory=dict)
    keys: dict[str, KeyPolicy] = field(default_factory=dict)
    catalog: Catalog = field(default_factory=Catalog)  # the model families, as data

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Snapshot:
        orgs = {
            o["id"]: OrgPolicy(
                org_id=o["id"],
                status=o["status"],
                allowed_networks=parse_networks(o.get("allowed_ips") or ()),
                rate_limit=o.get("rate_limit") or {},
                spend_limit=o.get("spend_limit"),
                webhooks=dict(o.get("webhooks") or {}),
                video_retention_days=int(o.get("video_retention_days") or 7),
            )
            for o in data.get("orgs", ())
        }
        keys = {
            k["id"]: KeyPolicy(
                key_id=k["id"],
                org_id=k["org_id"],
                status=k["status"],
                secret_hash=k["secret_hash"],
                previous_secret_hash=k.get("previous_secret_hash"),
                previous_valid_until=k.get("previous_valid_until"),
                expires_at=k.get("expires_at"),
                allowed_networks=parse_networks(k.get("allowed_ips") or ()),
                models=frozenset(k["models"]) if k.get("models") is not None else None,
                rate_limit=k.get("rate_limit") or {},
                spend_limit=k.get("spend_limit"),
            )
            for k in data.get("keys", ())
        }
        return cls(
            version=int(data.get("version", 0)),
            epoch=str(data.get("epoch", "")),
            orgs=orgs,
            keys=keys,
            catalog=Catalog.from_wire(data.get("catalog") or {}),
        )


type Listener = Callable[[Snapshot, Snapshot], None]


class PolicyStore:
    """Holds the current snapshot; listeners hear of each swap (the key cache drops stale ones)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.snapshot = Snapshot()
        self._listeners: list[Listener] = []
        self._clock = clock
        # Unix seconds when the control plane last answered with what this store holds (for a
        # restored snapshot: when the file says it last did).
        self.confirmed_at = 0.0
        # Seconds an edge apart may decide on a snapshot its control plane has not confirmed;
        # None: no limit (the embedded control plane hands over every change in-process).
        self.max_age: float | None = None
        # Restored from disk: the control plane's first answer replaces it, whatever its version.
        self.provisional = False

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def replace(self, snapshot: Snapshot) -> bool:
        """Swap in a newer snapshot; an older or equal version is ignored, unless it comes from
        another epoch (the control plane's database was replaced: its versions start over), or
        what the store holds was only restored from disk (the control plane is the authority)."""
        same_epoch = snapshot.epoch == self.snapshot.epoch
        if not self.provisional and same_epoch and snapshot.version <= self.snapshot.version:
            return False
        self._swap(snapshot)
        self.confirmed_at = self._clock()
        self.provisional = False
        return True

    def holds(self, snapshot: Snapshot) -> bool:
        """Whether `snapshot` is the version this store holds (an answer that changed nothing)."""
        return (snapshot.version, snapshot.epoch) == (self.snapshot.version, self.snapshot.epoch)

    def confirm(self) -> None:
        """The control plane answered and has nothing newer: what the store holds is current."""
        self.confirmed_at = self._clock()
        self.provisional = False

    def restore(self, snapshot: Snapshot, confirmed_at: float) -> bool:
        """Take a snapshot read from disk, only into a store that holds none: whatever is in
        memory came from the control plane (or from disk already) and is never replaced by a
        file, older or newer."""
        if self.snapshot.version > 0 or snapshot.version <= 0:
            return False
        self._swap(snapshot)
        self.confirmed_at = confirmed_at
        self.provisional = True
        return True

    def current(self, now: float) -> bool:
        """Whether keys may be judged on this snapshot: the edge has one, and (for an edge apart)
        the control plane confirmed it within `max_age`. Otherwise a key is neither valid nor
        invalid as far as this edge knows."""
        if self.snapshot.version <= 0:
            return False
        return self.max_age is None or now - self.confirmed_at <= self.max_age

    def _swap(self, snapshot: Snapshot) -> None:
        old, self.snapshot = self.snapshot, snapshot
        for listener in self._listeners:
            listener(old, snapshot)
