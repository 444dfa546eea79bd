"""The control plane's state: the database, the policy publisher, the audit log."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from control.aggregates.rollup import Folder
from control.store import catalog as catalogdb
from control.store import db as dbm
from control.store.adminauth import AdminAuth
from control.store.database import Database, Queries
from proxy.core.seedance.catalog import Catalog

type SnapshotListener = Callable[[dict[str, Any]], None]


class ControlState:
    def __init__(
        self, database: Database, data_dir: Path, *, suspend_after_rate_limited: int = 0
    ) -> None:
        self.db = database
        self.data_dir = data_dir
        self.suspend_after_rate_limited = suspend_after_rate_limited
        self.admin = AdminAuth(database)
        self.rollups = Folder(data_dir)  # usage rollups: a database file of their own
        self._snapshot: dict[str, Any] = {"version": 0, "orgs": [], "keys": []}
        self.catalog = Catalog()  # as last published
        self._snapshot_changed = asyncio.Condition()
        self._listeners: list[SnapshotListener] = []
        self._stopping = False

    @classmethod
    async def open(
        cls,
        data_dir: Path,
        *,
        suspend_after_rate_limited: int = 0,
        catalog_file: Path | None = None,
    ) -> ControlState:
        """The state over `data_dir`'s database; an empty catalog is seeded from `catalog_file`
        (default: config/models.toml)."""
        database = await dbm.connect(data_dir / "nextapi.sqlite3")
        await catalogdb.seed(database, catalog_file)
        state = cls(database, data_dir, suspend_after_rate_limited=suspend_after_rate_limited)
        await state.publish()
        return state

    async def close(self) -> None:
        async with self.transaction() as tx:
            await self.admin.flush_last_used(tx)
        self.admin.close()
        await self.rollups.close()
        await self.db.close()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Queries]:
        """Committed on success, rolled back on any error (on SQLite, one writer at a time)."""
        async with self.db.transaction() as tx:
            yield tx

    async def audit(
        self,
        tx: Queries,
        actor: str,
        action: str,
        target: str | None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        await tx.execute(
            "INSERT INTO audit (ts, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
            (dbm.now(), actor, action, target, json.dumps(detail or {}, separators=(",", ":"))),
        )

    # --- policy snapshots -------------------------------------------------------------------

    def subscribe(self, listener: SnapshotListener) -> None:
        """Called with each new snapshot (the embedded edge's policy store listens here)."""
        self._listeners.append(listener)
        listener(self._snapshot)

    @property
    def snapshot(self) -> dict[str, Any]:
        return self._snapshot

    async def publish(self) -> None:
        """Rebuild the policy snapshot from the database and hand it to every edge."""
        async with self.db.transaction() as tx:
            row = await dbm.fetch_one(tx, "SELECT value FROM meta WHERE key='policy_version'")
            version = int(row["value"]) + 1 if row else 1
            epoch = await self._epoch(tx)
            await tx.execute(
                "INSERT INTO meta (key, value) VALUES ('policy_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (str(version),),
            )
            orgs = await dbm.fetch_all(
                tx,
                "SELECT id, status, allowed_ips, rate_limit, spend_limit, video_retention_days "
                "FROM orgs",
            )
            hooks = await dbm.fetch_all(
                tx, "SELECT id, org_id, url FROM webhooks WHERE status='enabled'"
            )
            keys = await dbm.fetch_all(
                tx,
                "SELECT id, org_id, status, secret_hash, previous_secret_hash, "
                "previous_valid_until, expires_at, allowed_ips, models, rate_limit, spend_limit "
                "FROM api_keys",
            )
            catalog = await catalogdb.wire(tx)
        self.catalog = Catalog.from_wire(catalog)
        snapshot = {
            "version": version,
            "epoch": epoch,
            "orgs": [
                {
                    "id": o["id"],
                    "status": o["status"],
                    "allowed_ips": dbm.loads(o["allowed_ips"]),
                    "rate_limit": dbm.loads(o["rate_limit"]),
                    "spend_limit": dbm.loads(o["spend_limit"]),
                    "webhooks": {h["url"]: h["id"] for h in hooks if h["org_id"] == o["id"]},
                    "video_retention_days": o["video_retention_days"],
                }
                for o in orgs
            ],
            "keys": [
                {
                    "id": k["id"],
                    "org_id": k["org_id"],
                    "status": k["status"],
                    "secret_hash": k["secret_hash"],
                    "previous_secret_hash": k["previous_secret_hash"],
                    "previous_valid_until": k["previous_valid_until"],
                    "expires_at": k["expires_at"],
                    "allowed_ips": dbm.loads(k["allowed_ips"]),
                    "models": dbm.loads(k["models"]),
                    "rate_limit": dbm.loads(k["rate_limit"]),
                    "spend_limit": dbm.loads(k["spend_limit"]),
                }
                for k in keys
            ],
            "catalog": catalog,
        }
        self._snapshot = snapshot
        for listener in self._listeners:
            listener(snapshot)
        async with self._snapshot_changed:
            self._snapshot_changed.notify_all()

    async def _epoch(self, tx: Queries) -> str:
        row = await dbm.fetch_one(tx, "SELECT value FROM meta WHERE key='epoch'")
        if row is not None:
            return str(row["value"])
        epoch = secrets.token_hex(8)
        await tx.execute("INSERT INTO meta (key, value) VALUES ('epoch', ?)", (epoch,))
        return epoch

    async def wait_for_snapshot(self, after: int, wait: float) -> dict[str, Any]:
        """Long-poll support for edges apart: the snapshot once its version exceeds `after`
        (or at once when the control plane is shutting down, so it need not wait for us)."""
        async with self._snapshot_changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._snapshot_changed.wait_for(
                        lambda: self._stopping or self._snapshot["version"] > after
                    ),
                    wait,
                )
        return self._snapshot

    async def release_waiters(self) -> None:
        """Answer every pending long poll now; called before the HTTP server shuts down."""
        self._stopping = True
        async with self._snapshot_changed:
            self._snapshot_changed.notify_all()
