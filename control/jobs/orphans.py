"""Tasks the upstream made for creates the edge never answered (it died between relaying a create
and reading the answer, so it never learned the task id): found before their holds are released,
and charged to the org whose hold it was.

Seedance keeps no field of ours on a task, so a task is matched to a hold by what both record:
the model (its catalog family), the service tier, the resolution and audio, and the time (the
hold is made just before the create is relayed; the upstream's `created_at` follows within the
create's timeout). A task that fits holds of one org and key, all alike, takes the oldest; a task
that fits none, or holds that differ (two orgs, say), is billed to no one and reported, once, in
the audit log and `GET /v1/system`.

Each scan lists the upstream's tasks created since the last scan's end up to where every hold a
task could belong to is stale; the hold sweep (control/jobs/holds.py) releases only holds whose
every possible task that scan has seen. While the upstream cannot be listed, holds stay held, for
at most `give_up_after` seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from control.jobs.upstream import UpstreamTasks, UpstreamUnavailable
from control.store import db as dbm
from control.store.state import ControlState
from control.store.wallet import HOLD_SECONDS, assign_hold
from proxy.core.seedance.catalog import Catalog

log = logging.getLogger(__name__)

ACTOR = "system:holds"
PAGE_SIZE = 500  # the most the upstream lists in one page
MAX_PAGES = 40  # 20,000 tasks newer than the scan's start: more, and the scan waits
LIST_DAYS = 7  # the upstream lists the last 7 days only
NEWEST_SHOWN = 10


@dataclass(frozen=True)
class HoldTimes:
    stale_after: float = HOLD_SECONDS  # a create unanswered this long is not coming back
    create_seconds: float = 60.0  # the longest a create may take upstream (upstream_timeout)
    give_up_after: float = 3600.0  # released then even if the upstream could not be listed
    clock_slack: float = 5.0  # between this machine's clock and the upstream's

    def decided_before(self, now: float) -> float:
        """Tasks created before this can belong only to stale holds (or to tasks known)."""
        return now - self.stale_after - self.clock_slack

    def releasable_before(self, now: float) -> float:
        """A hold made before this has every task it could have made before decided_before."""
        return self.decided_before(now) - self.create_seconds - self.clock_slack


@dataclass(frozen=True)
class Scan:
    answered: bool  # the upstream was listed as far as the scan needed
    charged: int = 0  # tasks given to their holds
    unbilled: int = 0  # tasks reported


# --- matching (pure) ---------------------------------------------------------------------------


def _same_model(task_model: Any, hold_model: str, catalog: Catalog) -> bool:
    if not isinstance(task_model, str):
        return False
    if task_model == hold_model:
        return True
    family = catalog.match(task_model)
    return family is not None and family is catalog.match(hold_model)


def fits(task: dict[str, Any], hold: dict[str, Any], times: HoldTimes, catalog: Catalog) -> bool:
    """Whether the upstream's `task` could be what the create of `hold` made."""
    created = task.get("created_at")
    if not isinstance(created, int | float):
        return False
    earliest = hold["created_at"] - times.clock_slack
    if not earliest <= created <= hold["created_at"] + times.create_seconds + times.clock_slack:
        return False
    if (task.get("service_tier") or "default") != hold["tier"]:
        return False
    if not _same_model(task.get("model"), hold["model"], catalog):
        return False
    resolution = task.get("resolution")
    if resolution and hold["resolution"] and resolution != hold["resolution"]:
        return False
    family = catalog.match(hold["model"])
    audio = task.get("generate_audio")
    if family is not None and family.audio_supported and isinstance(audio, bool):
        if hold["generate_audio"] is not None and audio != bool(hold["generate_audio"]):
            return False
    return True


# What makes two holds interchangeable: either one billed for a task costs the same org and key
# the same, with the same webhook told.
_ALIKE = (
    "org_id",
    "key_id",
    "amount",
    "unit_price",
    "callback_webhook",
    "model",
    "tier",
    "generate_audio",
    "resolution",
    "video_input",
)


def pair(
    tasks: Sequence[dict[str, Any]],
    holds: Sequence[dict[str, Any]],
    times: HoldTimes,
    catalog: Catalog,
) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], list[tuple[dict[str, Any], str, int]]]:
    """Tasks given to holds, oldest first; and those left, each with why (`unmatched`: no hold
    fits; `ambiguous`: holds of different owners or prices fit) and how many holds fit."""
    free = sorted(holds, key=lambda hold: (hold["created_at"], hold["id"]))
    taken: set[str] = set()
    paired: list[tuple[dict[str, Any], dict[str, Any]]] = []
    left: list[tuple[dict[str, Any], str, int]] = []
    for task in sorted(tasks, key=lambda task: (task.get("created_at") or 0, str(task["id"]))):
        candidates = [h for h in free if h["id"] not in taken and fits(task, h, times, catalog)]
        if not candidates:
            left.append((task, "unmatched", 0))
        elif len({tuple(h[name] for name in _ALIKE) for h in candidates}) > 1:
            left.append((task, "ambiguous", len(candidates)))
        else:
            taken.add(candidates[0]["id"])
            paired.append((task, candidates[0]))
    return paired, left


# --- the scan ----------------------------------------------------------------------------------


class OrphanFinder:
    def __init__(
        self,
        state: ControlState,
        upstream: UpstreamTasks,
        times: HoldTimes,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.upstream = upstream
        self.times = times
        self.clock = clock

    async def scan(self) -> Scan:
        """List the upstream's tasks created since the last scan up to decided_before(now);
        give those nobody knows to their holds, or report them."""
        now = self.clock()
        end = self.times.decided_before(now)
        start = await self._start(now, end)
        if start >= end:
            await self._note(now, start, None)  # the next scan starts here, not at its own end
            return Scan(True)
        try:
            listed = await self._listed(start, end)
        except UpstreamUnavailable as exc:
            await self._note(now, None, str(exc))
            log.warning("upstream tasks could not be listed (%s): stale holds stay held", exc)
            return Scan(False)
        async with self.state.transaction() as tx:  # one writer: nothing assigns meanwhile
            known = await self._known(tx, [task["id"] for task in listed])
            tasks = [task for task in listed if task["id"] not in known]
            holds = await self._unassigned(tx, start, end) if tasks else []
            paired, left = pair(tasks, holds, self.times, self.state.catalog)
            for task, hold in paired:
                await assign_hold(tx, hold["id"], task["id"], now)
                await self._record(tx, task, "charged", now, hold)
                detail = {"task_id": task["id"], "reservation": hold["id"], "model": hold["model"]}
                await self.state.audit(tx, ACTOR, "hold.orphan_charged", hold["org_id"], detail)
            for task, reason, candidates in left:
                await self._record(tx, task, reason, now)
                detail = {
                    "reason": reason,
                    "holds_fitting": candidates,
                    "model": task.get("model"),
                    "status": task.get("status"),
                    "created_at": task.get("created_at"),
                }
                await self.state.audit(tx, ACTOR, "upstream.task_unbilled", task["id"], detail)
            await self._note(now, end, None, tx)
        if left:
            log.warning(
                "%d upstream tasks match no credit hold and are billed to no one (GET /v1/system)",
                len(left),
            )
        return Scan(True, len(paired), len(left))

    async def _start(self, now: float, end: float) -> float:
        """Where this scan starts: the last one's end; at the first, the oldest unassigned hold
        (or nothing to scan)."""
        row = await dbm.fetch_one(self.state.db, "SELECT scanned_until FROM orphan_scan")
        if row is not None and row["scanned_until"] is not None:
            start = row["scanned_until"]
        else:
            oldest = await dbm.fetch_one(
                self.state.db,
                "SELECT MIN(created_at) AS at FROM reservations "
                "WHERE status='held' AND task_id IS NULL",
            )
            at = oldest["at"] if oldest is not None else None
            start = end if at is None else min(end, at - self.times.clock_slack)
        return max(start, now - LIST_DAYS * 86400)

    async def _listed(self, start: float, end: float) -> list[dict[str, Any]]:
        """The upstream's tasks with start <= created_at < end (its list is newest first)."""
        found: list[dict[str, Any]] = []
        for page_num in range(1, MAX_PAGES + 1):
            items, total = await self.upstream.list_page(page_num, PAGE_SIZE)
            for item in items:
                created = item.get("created_at")
                if isinstance(item.get("id"), str) and isinstance(created, int | float):
                    if start <= created < end:
                        found.append(item)
            oldest = items[-1].get("created_at") if items else None
            if not items or page_num * PAGE_SIZE >= total:
                return found
            if isinstance(oldest, int | float) and oldest < start:
                return found
        raise UpstreamUnavailable(f"more than {MAX_PAGES * PAGE_SIZE} tasks to list")

    async def _known(self, tx: Any, ids: list[str]) -> set[str]:
        known: set[str] = set()
        for at in range(0, len(ids), 500):
            chunk = ids[at : at + 500]
            marks = ",".join("?" * len(chunk))
            rows = await dbm.fetch_all(
                tx,
                f"SELECT id FROM tasks WHERE id IN ({marks}) "
                f"UNION SELECT task_id FROM upstream_orphans WHERE task_id IN ({marks})",
                *chunk,
                *chunk,
            )
            known.update(row[0] for row in rows)
        return known

    async def _unassigned(self, tx: Any, start: float, end: float) -> list[dict[str, Any]]:
        """Held holds without a task that a task created in [start, end) could belong to."""
        times = self.times
        rows = await dbm.fetch_all(
            tx,
            "SELECT * FROM reservations WHERE status='held' AND task_id IS NULL "
            "AND created_at>=? AND created_at<?",
            start - times.create_seconds - times.clock_slack,
            end + times.clock_slack,
        )
        return [dict(row) for row in rows]

    async def _record(
        self,
        tx: Any,
        task: dict[str, Any],
        outcome: str,
        now: float,
        hold: dict[str, Any] | None = None,
    ) -> None:
        await tx.execute(
            "INSERT INTO upstream_orphans (task_id, outcome, org_id, reservation_id, model, "
            "status, upstream_created_at, found_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (
                task["id"],
                outcome,
                hold["org_id"] if hold else None,
                hold["id"] if hold else None,
                str(task.get("model"))[:200],
                str(task.get("status"))[:40],
                task.get("created_at"),
                now,
            ),
        )

    async def _note(
        self, now: float, until: float | None, error: str | None, tx: Any = None
    ) -> None:
        """The scan's progress and its last error, for GET /v1/system."""
        sql = (
            "INSERT INTO orphan_scan (id, scanned_until, checked_at, error) VALUES (1, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET checked_at=excluded.checked_at, error=excluded.error, "
            "scanned_until=COALESCE(excluded.scanned_until, orphan_scan.scanned_until)"
        )
        if tx is not None:
            await tx.execute(sql, (until, now, error))
            return
        async with self.state.transaction() as own:
            await own.execute(sql, (until, now, error))


async def status(state: ControlState) -> dict[str, Any]:
    """What GET /v1/system says of the scans: tasks charged, tasks billed to no one (and not
    billed since: a late usage record may yet assign one), the newest of those."""
    counts = await dbm.fetch_one(
        state.db,
        "SELECT SUM(CASE WHEN outcome='charged' THEN 1 ELSE 0 END) AS charged, "
        "SUM(CASE WHEN outcome!='charged' AND task_id NOT IN (SELECT id FROM tasks) "
        "THEN 1 ELSE 0 END) AS unbilled FROM upstream_orphans",
    )
    newest = await dbm.fetch_all(
        state.db,
        "SELECT task_id, outcome AS reason, model, status, upstream_created_at AS created_at, "
        "found_at "
        "FROM upstream_orphans WHERE outcome!='charged' AND task_id NOT IN (SELECT id FROM tasks) "
        "ORDER BY found_at DESC, task_id LIMIT ?",
        NEWEST_SHOWN,
    )
    scan = await dbm.fetch_one(state.db, "SELECT scanned_until, checked_at, error FROM orphan_scan")
    return {
        "charged": int(counts["charged"] or 0) if counts else 0,
        "unbilled": int(counts["unbilled"] or 0) if counts else 0,
        "newest_unbilled": [dict(row) for row in newest],
        "scanned_until": scan["scanned_until"] if scan else None,
        "checked_at": scan["checked_at"] if scan else None,
        "error": scan["error"] if scan else None,
    }
