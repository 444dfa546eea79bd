"""The control plane's state: the databases (the main file, and the request log's own:
control/store/requestlog.py), the policy publisher, the audit log."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from control.aggregates.rollup import Folder
from control.store import catalog as catalogdb
from control.store import db as dbm
from control.store import requestlog
from control.store.adminauth import AdminAuth
from control.store.database import Database, Queries
from control.store.partitions import DayPartitions
from control.store.sqlite import SqliteDatabase
from proxy.core.seedance.catalog import Catalog

type SnapshotListener = Callable[[dict[str, Any]], None]

log = logging.getLogger(__name__)

POLICY_CHANNEL = "nextapi_policy"  # payload: the version just published
REFRESH_RETRIES = (0.2, 0.5, 1.0, 2.0, 5.0)  # seconds between reads of a noticed version


class ControlState:
    def __init__(
        self,
        database: Database,
        log: Database,
        data_dir: Path,
        *,
        suspend_after_rate_limited: int = 0,
    ) -> None:
        self.db = database
        # The request log (usage records, security events): on SQLite a file and a writer of
        # its own, so that ingest's inserts never hold up the main file's (credit holds).
        self.log = log
        # On PostgreSQL the log's tables are partitioned by day (control/store/partitions.py);
        # SQLite's file is not.
        self.log_days: dict[str, DayPartitions] = (
            {}
            if isinstance(log, SqliteDatabase)
            else {table: DayPartitions(log, table) for table in requestlog.TABLES}
        )
        self.data_dir = data_dir
        self.suspend_after_rate_limited = suspend_after_rate_limited
        self.admin = AdminAuth(database)
        # Usage rollups: on SQLite a database file of their own, on PostgreSQL its tables.
        self.rollups = Folder(data_dir, database)
        self._snapshot: dict[str, Any] = {"version": 0, "orgs": [], "keys": []}
        self.catalog = Catalog()  # as last published
        self._snapshot_changed = asyncio.Condition()
        self._listeners: list[SnapshotListener] = []
        self._stopping = False
        self._refreshes: set[asyncio.Task[None]] = set()
        self._epoch = ""  # the database's, claimed once at open (claim_epoch)

    @classmethod
    async def open(
        cls,
        data_dir: Path,
        *,
        suspend_after_rate_limited: int = 0,
        catalog_file: Path | None = None,
        database_url: str | None = None,
    ) -> ControlState:
        """The state over `data_dir`'s database (or the PostgreSQL one at `database_url`); an
        empty catalog is seeded from `catalog_file` (default: config/models.toml). On SQLite
        the request log is a file of its own beside it (control/store/requestlog.py); on
        PostgreSQL, which has no one writer for a hold to wait behind, it is the same
        database's tables."""
        database = await dbm.open_database(database_url or data_dir / dbm.MAIN_FILE)
        try:
            log = (
                await requestlog.connect(requestlog.log_path(data_dir))
                if isinstance(database, SqliteDatabase)
                else database
            )
        except BaseException:
            await database.close()
            raise
        state = cls(database, log, data_dir, suspend_after_rate_limited=suspend_after_rate_limited)
        try:
            if isinstance(log, SqliteDatabase) and isinstance(database, SqliteDatabase):
                await requestlog.move_from_main(log, database)
            # Before anything is ingested: the rollups' watermark checked against this log.
            await state.rollups.open()
            await catalogdb.seed(database, catalog_file)
            async with database.transaction() as tx:
                state._epoch = await claim_epoch(tx)
            # Listening first: a version another control plane publishes meanwhile is not
            # missed.
            await database.listen(POLICY_CHANNEL, state._noticed)
            await state.publish()
        except BaseException:
            await state.rollups.close()
            if log is not database:
                await log.close()
            await database.close()
            raise
        return state

    async def close(self) -> None:
        for task in list(self._refreshes):
            task.cancel()
        await asyncio.gather(*self._refreshes, return_exceptions=True)
        async with self.transaction() as tx:
            await self.admin.flush_last_used(tx)
        self.admin.close()
        await self.rollups.close()
        if self.log is not self.db:
            await self.log.close()
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
        """Rebuild the policy snapshot from the database under a new version and hand it to
        every edge. The version is minted in the database, so that every control plane on it
        numbers alike, and announced to the others (`POLICY_CHANNEL`), which then read it too."""
        async with self.db.transaction() as tx:
            row = await tx.fetch_one(
                "INSERT INTO meta (key, value) VALUES ('policy_version', '1') "
                "ON CONFLICT (key) DO UPDATE SET "
                "value = CAST(CAST(meta.value AS BIGINT) + 1 AS TEXT) RETURNING value"
            )
            assert row is not None
            snapshot = await self._read_snapshot(tx, int(row["value"]))
            await tx.notify(POLICY_CHANNEL, str(snapshot["version"]))
        await self._install(snapshot)

    async def refresh(self) -> None:
        """Read the snapshot another control plane on this database published (one snapshot
        of the database for the whole read)."""
        async with self.db.reader() as tx:
            row = await tx.fetch_one("SELECT value FROM meta WHERE key='policy_version'")
            version = int(row["value"]) if row is not None else 0
            if version <= self._snapshot["version"]:
                return
            snapshot = await self._read_snapshot(tx, version)
        await self._install(snapshot)

    async def _refresh_until_read(self) -> None:
        """refresh, tried again while the database is away (a notice that came as it went
        away, or the LISTEN connection's return after a restart): waiting longer each time."""
        for wait in REFRESH_RETRIES:
            try:
                await self.refresh()
                return
            except Exception as failed:  # the database away; the next publish reads anyway
                log.warning("policy refresh failed (%s); trying again", type(failed).__name__)
            await asyncio.sleep(wait)
        await self.refresh()  # the last time, a failure is logged by _refreshed

    def _noticed(self, payload: str) -> None:
        """A control plane published version `payload`: read it, unless it is known."""
        if payload.isdigit() and int(payload) <= self._snapshot["version"]:
            return
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._refresh_until_read(), name="policy refresh")
        self._refreshes.add(task)
        task.add_done_callback(self._refreshed)

    def _refreshed(self, task: asyncio.Task[None]) -> None:
        self._refreshes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("policy refresh failed", exc_info=task.exception())

    async def _read_snapshot(self, tx: Queries, version: int) -> dict[str, Any]:
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
        return {
            "version": version,
            "epoch": self._epoch,
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

    async def _install(self, snapshot: dict[str, Any]) -> None:
        """The snapshot, unless a newer one is in place already (two publishes finishing out
        of order, or a refresh behind one of our own)."""
        if snapshot["version"] <= self._snapshot["version"]:
            return
        self.catalog = Catalog.from_wire(snapshot["catalog"])
        self._snapshot = snapshot
        for listener in self._listeners:
            listener(snapshot)
        async with self._snapshot_changed:
            self._snapshot_changed.notify_all()

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


async def claim_epoch(tx: Queries) -> str:
    """The database's epoch (edges tell a restored or another database by it), made once:
    claimed by its key, so two control planes starting on a new database keep one."""
    await tx.execute(
        "INSERT INTO meta (key, value) VALUES ('epoch', ?) ON CONFLICT DO NOTHING",
        (secrets.token_hex(8),),
    )
    row = await dbm.fetch_one(tx, "SELECT value FROM meta WHERE key='epoch'")
    assert row is not None
    return str(row["value"])
