"""The edge's in-memory policy snapshot: orgs and keys as the control plane last published them.

The control plane builds the snapshot as plain data (`to_wire` shape, msgpack-able) after every
change; the edge swaps it in whole, so a request sees either the old or the new policy, never a mix.
The hot path reads only this; it never queries the database. The model catalog travels in it
too, so a new model or price is live on every edge as soon as the snapshot arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from proxy.auth.netaddr import IPNetwork, parse_networks
from proxy.seedance.catalog import Catalog


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

    def __init__(self) -> None:
        self.snapshot = Snapshot()
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def replace(self, snapshot: Snapshot) -> bool:
        """Swap in a newer snapshot; an older or equal version is ignored, unless it comes from
        another epoch (the control plane's database was replaced: its versions start over)."""
        same_epoch = snapshot.epoch == self.snapshot.epoch
        if same_epoch and snapshot.version <= self.snapshot.version:
            return False
        old, self.snapshot = self.snapshot, snapshot
        for listener in self._listeners:
            listener(old, snapshot)
        return True
