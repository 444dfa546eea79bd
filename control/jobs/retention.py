"""Retention, as the privacy policy promises it: request logs 90 days, billing records 7 years,
a closed account's data 30 days after closure, security events (failed authentications with the
client address) 90 days. Every period is a setting.

The purge deletes in bounded batches, each its own short transaction, so the database is never
held for long; raw usage records are deleted only once folded into the rollups
(control/aggregates/rollup.py), so aggregates outlive the records they came from (for as long as
billing records). The request log's tables (usage, security events) are in a file of their own
(control/store/requestlog.py), purged through its writer; on PostgreSQL both are partitioned
by day, and a day past its period (for usage, once folded) is dropped whole
(control/store/partitions.py).
Freed pages are returned with an incremental vacuum, in each file (on PostgreSQL, where the log
is the database's own tables, autovacuum does it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from control.jobs.videos import VideoSweeper
from control.periodic import Periodic
from control.store import db as dbm
from control.store import requestlog
from control.store.database import Database
from control.store.state import ControlState
from proxy.core.idempotency import TTL_SECONDS as IDEMPOTENCY_TTL

log = logging.getLogger(__name__)
DAY = 86400.0
ACCOUNT_TABLES = (
    "webhook_attempts",
    "webhook_events",
    "webhooks",
    "api_keys",
    "tasks",
    "usage",
    "customer_members",  # its people from Clerk (control/customers/)
    "billing_accounts",  # its Stripe customer, saved card and low-balance settings
)
UNLINKED = "security_events_unlinked"  # a purged org's security events, kept without its id
# Clerk's people left in no org once it is purged: their name and email go with the account.
UNATTACHED_USERS = "customer_users_unattached"
# How long an applied Svix message id is kept: Svix retries for about three days, and an older
# message applied again changes nothing anyway (each Clerk object keeps its newest version).
CLERK_MESSAGES_DAYS = 30
# How long an applied Stripe event id is kept: Stripe retries for three days; an older event
# applied again changes nothing (each payment grants once, reversals are cumulative).
STRIPE_EVENTS_DAYS = 90


@dataclass(frozen=True, slots=True)
class Periods:
    api_logs_days: int = 90
    billing_days: int = 7 * 365 + 2  # seven years, leap days included
    closed_account_days: int = 30
    security_events_days: int = 90


@dataclass(frozen=True, slots=True)
class LastRun:
    """The last purge the schedule ran: when, how long, what it deleted, or why it failed."""

    started: float
    seconds: float
    deleted: dict[str, int]
    error: str | None = None


@dataclass(slots=True)
class Report:
    counts: dict[str, int]

    def lines(self, *, nonzero: bool = False) -> list[str]:
        return [f"{table}: {n}" for table, n in self.counts.items() if n or not nonzero]


class Retention:
    def __init__(
        self,
        state: ControlState,
        periods: Periods | None = None,
        *,
        clock: Callable[[], float] = time.time,
        batch: int = 1000,
        videos: VideoSweeper | None = None,
    ) -> None:
        self.state = state
        self.videos = videos  # the gateway's copies of videos, when it keeps them
        self.periods = periods or Periods()
        self.clock = clock
        self.batch = batch
        self.folder = state.rollups
        self._rounds = Periodic("retention purge", self.scheduled_run, lead=state.db.lead)
        self.interval: float | None = None  # seconds between scheduled runs, once started
        self.last_run: LastRun | None = None  # in memory: the schedule runs once at start

    async def purge(self, *, dry_run: bool = False) -> Report:
        """Delete what has outlived its period; with `dry_run`, only count it."""
        now = self.clock()
        logs_cutoff = now - self.periods.api_logs_days * DAY
        billing_cutoff = now - self.periods.billing_days * DAY
        closed_cutoff = now - self.periods.closed_account_days * DAY
        security_cutoff = now - self.periods.security_events_days * DAY
        counts: dict[str, int] = {}
        if self.videos is not None:  # each org's own period, from the task's end
            counts["videos"] = await self.videos.sweep(now, dry_run=dry_run)
        counts["usage"] = await self._usage(logs_cutoff, dry_run)
        counts["security_events"] = await self._security_events(security_cutoff, dry_run)
        counts["webhook_attempts"] = await self._rows(
            "webhook_attempts", "attempted_at<?", (logs_cutoff,), dry_run
        )
        counts["webhook_events"] = await self._rows(
            "webhook_events", "updated_at<? AND status!='pending'", (logs_cutoff,), dry_run
        )
        counts["ledger"] = await self._rows("ledger", "created_at<?", (billing_cutoff,), dry_run)
        counts["reservations"] = await self._rows(
            "reservations", "created_at<? AND status!='held'", (billing_cutoff,), dry_run
        )
        counts["upstream_orphans"] = await self._rows(  # which org a found task was billed to
            "upstream_orphans", "found_at<?", (billing_cutoff,), dry_run
        )
        # Payments, their invoices and disputes are billing records, kept with the ledger.
        counts["payments"] = await self._rows(
            "payments",
            "created_at<? AND status NOT IN ('pending', 'sending')",
            (billing_cutoff,),
            dry_run,
        )
        counts["payment_refunds"] = await self._rows(
            "payment_refunds", "updated_at<?", (billing_cutoff,), dry_run
        )
        counts["invoices"] = await self._rows("invoices", "issued_at<?", (billing_cutoff,), dry_run)
        counts["disputes"] = await self._rows("disputes", "closed_at<?", (billing_cutoff,), dry_run)
        counts["stripe_events"] = await self._rows(
            "stripe_events", "received_at<?", (now - STRIPE_EVENTS_DAYS * DAY,), dry_run
        )
        counts["usage_daily"] = await self._rows(
            "usage_daily", "day<?", (_day(billing_cutoff),), dry_run
        )
        counts["idempotency_keys"] = await self._rows(  # a key answers for 24 hours
            "idempotency_keys", "created_at<?", (now - IDEMPOTENCY_TTL,), dry_run
        )
        counts["clerk_messages"] = await self._rows(
            "clerk_messages", "applied_at<?", (now - CLERK_MESSAGES_DAYS * DAY,), dry_run
        )
        # The usage rollups are billing records.
        counts |= await self.folder.purge(billing_cutoff, dry_run=dry_run)
        counts |= await self._closed_accounts(closed_cutoff, dry_run)
        reclaim = self.state.db.dialect.reclaim  # SQLite's; PostgreSQL's autovacuum
        if not dry_run and reclaim is not None:
            await self.state.db.execute(reclaim)
            if self.state.log is not self.state.db:  # the request log's own file
                await self.state.log.execute(reclaim)
        return Report(counts)

    def _db(self, table: str) -> Database:
        """The file `table` is in: the request log's, or the main one."""
        return self.state.log if table in requestlog.TABLES else self.state.db

    async def _rows(self, table: str, where: str, args: tuple, dry_run: bool) -> int:
        if table == "usage":  # never the newest row: its rowid would be handed out again
            where += " AND rowid < (SELECT MAX(rowid) FROM usage)"
        db = self._db(table)
        if dry_run:
            row = await dbm.fetch_one(db, f"SELECT COUNT(*) AS n FROM {table} WHERE {where}", *args)
            return int(row["n"]) if row else 0
        total = 0
        while True:
            async with db.transaction() as tx:
                cursor = await tx.execute(
                    f"DELETE FROM {table} WHERE rowid IN "
                    f"(SELECT rowid FROM {table} WHERE {where} LIMIT ?)",
                    (*args, self.batch),
                )
            total += cursor.rowcount
            if cursor.rowcount < self.batch:
                return total
            await asyncio.sleep(0)  # let the edge and the API in between batches

    async def _usage(self, cutoff: float, dry_run: bool) -> int:
        """Delete old request records, batch by batch, once the rollups hold them."""
        if dry_run:  # a real run folds them first
            return await self._rows("usage", "ts<?", (cutoff,), dry_run)
        await self.folder.fold()
        folded = await self.folder.watermark()
        dropped = 0
        if self.state.log_days:  # PostgreSQL's whole days first, then the rest
            dropped = await self.state.log_days["usage"].drop_before(cutoff, folded=folded)
        return dropped + await self._rows("usage", "ts<? AND rowid<=?", (cutoff, folded), dry_run)

    async def _security_events(self, cutoff: float, dry_run: bool) -> int:
        dropped = 0
        if self.state.log_days and not dry_run:  # PostgreSQL's whole days first
            dropped = await self.state.log_days["security_events"].drop_before(cutoff)
        return dropped + await self._rows("security_events", "ts<?", (cutoff,), dry_run)

    async def _closed_accounts(self, cutoff: float, dry_run: bool) -> dict[str, int]:
        """A closed org's account data goes 30 days after closure; its billing records stay for
        their own period, tied to an org row reduced to its id."""
        orgs = await dbm.fetch_all(
            self.state.db,
            "SELECT id FROM orgs WHERE status='closed' AND closed_at<? AND purged_at IS NULL",
            cutoff,
        )
        videos = ("videos",) if self.videos is not None else ()
        counts = {"closed_orgs": len(orgs)} | dict.fromkeys(
            (*videos, *ACCOUNT_TABLES, UNLINKED, UNATTACHED_USERS), 0
        )
        for org in orgs:
            for table, n in (await self.purge_org(org["id"], dry_run=dry_run)).items():
                counts[table] = counts.get(table, 0) + n
        return {k if k == "closed_orgs" else f"closed_account.{k}": v for k, v in counts.items()}

    async def purge_org(
        self, org_id: str, *, dry_run: bool = False, actor: str = "system:retention"
    ) -> dict[str, int]:
        """Delete one closed org's account data now (its billing records stay for their own
        period, tied to an org row reduced to its id; its security events stay for theirs,
        no longer tied to it)."""
        of_webhooks = "webhook_id IN (SELECT id FROM webhooks WHERE org_id=?)"
        counts = {}
        if not dry_run:  # the account's usage stays in the rollups, billing records
            await self.folder.fold()
        if self.videos is not None:  # before the task rows that say which copies are the org's
            counts["videos"] = await self.videos.purge_org(org_id, self.clock(), dry_run=dry_run)
        people = await dbm.fetch_all(
            self.state.db, "SELECT clerk_user_id FROM customer_members WHERE org_id=?", org_id
        )
        for table in ACCOUNT_TABLES:  # in this order: events before their endpoints
            where = of_webhooks if table.startswith("webhook_") else "org_id=?"
            counts[table] = await self._rows(table, where, (org_id,), dry_run)
        counts[UNLINKED] = await self._unlink_security_events(org_id, dry_run)
        counts[UNATTACHED_USERS] = await self._unattached_users(
            org_id, [row["clerk_user_id"] for row in people], dry_run
        )
        if not dry_run:
            async with self.state.log.transaction() as tx:
                # The newest request record, if it is the org's, stays without its ids.
                await tx.execute(
                    "UPDATE usage SET org_id=NULL, key_id=NULL, task_id=NULL, model=NULL "
                    "WHERE org_id=?",
                    (org_id,),
                )
            async with self.state.transaction() as tx:
                await tx.execute(
                    "UPDATE orgs SET name='(deleted)', email='', contact_name=NULL, "
                    "allowed_ips='[]', rate_limit='{}', spend_limit=NULL, updated_at=?, "
                    "purged_at=? WHERE id=?",
                    (self.clock(), self.clock(), org_id),
                )
                await self.state.audit(tx, actor, "org.purge", org_id)
            await self.state.publish()
        return counts

    async def _unattached_users(self, org_id: str, people: list[str], dry_run: bool) -> int:
        """Of the org's people from Clerk, those in no other org: their name and email are
        account data of the account gone (one in another org keeps them for that one)."""
        total = 0
        for clerk_user_id in people:
            total += await self._rows(
                "customer_users",
                "clerk_user_id=? AND clerk_user_id NOT IN "
                "(SELECT clerk_user_id FROM customer_members WHERE org_id!=?)",
                (clerk_user_id, org_id),
                dry_run,
            )
        return total

    async def _unlink_security_events(self, org_id: str, dry_run: bool) -> int:
        """A purged org's security events stay for their own period: they are kept against
        fraud and abuse (an address that tried many keys), which outlives the account. What
        ties them to the account goes: `org_id` is cleared. The key id stays: it is the handle
        of a key that no longer exists (its row is purged), not account data, and it is what
        links attempts on one key across addresses. (The daily rollups, billing records, still
        pair that key id with the org's id for their own period.)"""
        if dry_run:
            row = await dbm.fetch_one(
                self.state.log, "SELECT COUNT(*) AS n FROM security_events WHERE org_id=?", org_id
            )
            return int(row["n"]) if row else 0
        total = 0
        while True:
            async with self.state.log.transaction() as tx:
                cursor = await tx.execute(
                    "UPDATE security_events SET org_id=NULL WHERE rowid IN "
                    "(SELECT rowid FROM security_events WHERE org_id=? LIMIT ?)",
                    (org_id, self.batch),
                )
            total += cursor.rowcount
            if cursor.rowcount < self.batch:
                return total
            await asyncio.sleep(0)

    # --- the schedule --------------------------------------------------------------------------

    async def scheduled_run(self) -> None:
        """One purge of the schedule, recorded in `last_run` (GET /v1/system shows it)."""
        started = self.clock()
        began = time.monotonic()
        try:
            report = await self.purge()
        except Exception as exc:
            log.exception("retention purge failed; trying again next round")
            self.last_run = LastRun(started, time.monotonic() - began, {}, type(exc).__name__)
            return
        self.last_run = LastRun(started, time.monotonic() - began, dict(report.counts))
        deleted = ", ".join(report.lines(nonzero=True)) or "nothing was due"
        log.info("retention purge: %s", deleted)

    def start(self, interval: float = DAY) -> None:
        self.interval = interval
        self._rounds.start(interval)

    async def stop(self) -> None:
        await self._rounds.stop()


def _day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))
