"""Deleting the gateway's copies of videos when the org's retention ends (`video_retention_days`,
counted from the task's end) or when the account is purged; the task record keeps when.

The edge stops serving a video at the end of its retention by itself (the time is signed into
every link, proxy/videos/links.py); this sweep frees the storage and writes it down.
"""

from __future__ import annotations

import asyncio
import logging

from control.store import db as dbm
from control.store.state import ControlState
from proxy.core.video_assets import AssetError, AssetStore

log = logging.getLogger(__name__)
DAY = 86400.0

_DUE = (
    "SELECT t.id FROM tasks t JOIN orgs o ON o.id = t.org_id "
    "WHERE t.status='succeeded' AND t.video_deleted_at IS NULL "
    "AND t.finished_at <= ? - o.video_retention_days * 86400.0 "
)
_OF_ORG = "SELECT id FROM tasks WHERE org_id=? AND status='succeeded' AND video_deleted_at IS NULL "


class VideoSweeper:
    def __init__(self, state: ControlState, store: AssetStore, *, batch: int = 200) -> None:
        self.state = state
        self.store = store
        self.batch = batch

    async def sweep(self, now: float, *, dry_run: bool = False) -> int:
        """Delete every copy past its org's retention; returns the tasks whose copies went."""
        return await self._delete(_DUE, (now,), now, dry_run)

    async def purge_org(self, org_id: str, now: float, *, dry_run: bool = False) -> int:
        """Delete all of an org's copies at once (its account is being purged)."""
        return await self._delete(_OF_ORG, (org_id,), now, dry_run)

    async def _delete(self, select: str, args: tuple, now: float, dry_run: bool) -> int:
        if dry_run:
            rows = await dbm.fetch_all(self.state.db, select, *args)
            return len(rows)
        total = 0
        while True:
            rows = await dbm.fetch_all(self.state.db, select + "LIMIT ?", *args, self.batch)
            done: list[str] = []
            for row in rows:
                try:
                    await self.store.delete_prefix(f"{row['id']}/")
                except (AssetError, OSError, ValueError) as exc:
                    # Left unmarked: the next sweep tries again (the edge serves it no longer).
                    log.warning("task %s: video copies not deleted: %s", row["id"], exc)
                    continue
                done.append(row["id"])
            if done:
                async with self.state.transaction() as tx:
                    await tx.executemany(
                        "UPDATE tasks SET video_deleted_at=? WHERE id=?",
                        [(now, task_id) for task_id in done],
                    )
            total += len(done)
            if len(rows) < self.batch or len(done) < len(rows):
                return total  # the whole backlog, or a store in trouble: the next round goes on
            await asyncio.sleep(0)
