"""Credits: the ledger, reservations against balance and spend limits, and settlement.

The ledger is the truth: grants and refunds add, charges subtract; the balance is derived from it
(`available` = ledger total − held reservations). Each org's ledger total is kept as entries are
written (`ledger_totals`, by a trigger in the same transaction), so reading it is one row however
long the ledger, and the purge of entries past their retention leaves the balance as it was. A
create reserves the most it can cost, in one transaction holding its org (`lock_org`: on SQLite
the one writer, on PostgreSQL the org's row locked), against the available balance and every
spend limit of the org and the key; so concurrent creates, on one control plane or several, can
never together reserve more than there is. When the task ends the reservation is settled
exactly once: a charge for the actual tokens of a succeeded task (unique per task id), nothing for a
failed, cancelled or expired one, and the rest released.

Spend limits count by the calendar (UTC): the current day or month's charges plus the holds made in
it, so a period rolls over by itself, with no job that might not run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any, Protocol

from control.store import db as dbm
from control.store.database import Queries, Row
from control.store.state import ControlState
from control.store.wallet_tasks import TaskRecords
from proxy.core import pricing
from proxy.core.wallet import Hold, Refusal

log = logging.getLogger(__name__)

SUCCEEDED = "succeeded"
ENDED = frozenset({"succeeded", "failed", "cancelled", "expired"})
HOLD_SECONDS = 300.0  # a hold whose create never answered is released after this (crash recovery)


# The most an org's ledger may hold, in micro-credits: exact in JSON numbers and msgpack, and far
# below where SQLite's integer sums would turn into floats (2**63).
MAX_BALANCE = 2**53


class BalanceCeiling(ValueError):
    """A grant would take the org's ledger total past MAX_BALANCE."""

    def __init__(self, room: int) -> None:
        super().__init__(f"the org's balance may hold at most {MAX_BALANCE} micro-credits")
        self.room = max(0, room)  # what could still be granted


def period_start(now: float, period: str) -> float:
    moment = datetime.fromtimestamp(now, UTC)
    if period == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start.timestamp()


async def funds(db: Any, org_id: str) -> tuple[int, int]:
    """The org's ledger total and what its held reservations hold, read on `db` (the
    connection, or a transaction): the balance available is their difference."""
    row = await dbm.fetch_one(
        db,
        "SELECT COALESCE((SELECT total FROM ledger_totals WHERE org_id=?), 0) AS total, "
        "(SELECT COALESCE(SUM(amount), 0) FROM reservations "
        " WHERE org_id=? AND status='held') AS held",
        org_id,
        org_id,
    )
    assert row is not None
    return int(row["total"]), int(row["held"])


async def lock_org(tx: Queries, org_id: str) -> None:
    """Holds, grants and refunds of one org one at a time, whatever the control plane: what
    they check (the balance, a spend limit, the ceiling) stays true until they commit. On
    PostgreSQL the org's row is locked for the transaction; SQLite's one writer already is."""
    if tx.dialect.for_update:
        await tx.execute(f"SELECT 1 FROM orgs WHERE id=?{tx.dialect.for_update}", (org_id,))


async def assign_hold(tx: Any, request_id: str, task_id: str, now: float) -> None:
    """Gives the hold of create `request_id` to the task the upstream made of it, in `tx`; the
    task record is made then, owned by the hold's org. Idempotent: the edge's call and the
    create's usage record (control/api/usage.py) may both do it, in either order."""
    # A hold released meanwhile (recover() after a restart, while this create was still in
    # flight, or its assignment waiting in an edge's spool) is taken again: the task exists
    # upstream and will cost what it costs.
    # A task has one hold: should a late record name a task the orphan scan gave to another
    # hold of the org (control/jobs/orphans.py), the task keeps that one.
    await tx.execute(
        "UPDATE reservations SET task_id=?, status='held', settled_at=NULL "
        "WHERE id=? AND task_id IS NULL AND status IN ('held', 'released') "
        "AND NOT EXISTS (SELECT 1 FROM reservations WHERE task_id=?)",
        (task_id, request_id, task_id),
    )
    await tx.execute(
        "INSERT INTO tasks (id, org_id, key_id, model, service_tier, status, "
        "reserved, callback_webhook, unit_price, created_at, updated_at) "
        "SELECT ?, org_id, key_id, model, tier, 'queued', amount, callback_webhook, "
        "unit_price, ?, ? FROM reservations WHERE id=? AND task_id=? ON CONFLICT DO NOTHING",
        (task_id, now, now, request_id, task_id),
    )


async def release_hold(tx: Any, request_id: str, now: float) -> None:
    """Gives back the hold of create `request_id`, which the upstream did not accept, in `tx`
    (a hold already given to a task stays). Idempotent, like assign_hold."""
    await tx.execute(
        "UPDATE reservations SET status='released', settled_at=? "
        "WHERE id=? AND status='held' AND task_id IS NULL",
        (now, request_id),
    )


class BalanceWatch(Protocol):
    """Told of each settlement in its transaction (control/payments/lowbalance.py: the
    low-balance alert and auto-recharge); `check` answers True when `wake` is due once the
    transaction commits."""

    async def check(self, tx: Any, org_id: str, now: float) -> bool: ...

    def wake(self) -> None: ...


class DatabaseWallet(TaskRecords):
    def __init__(
        self,
        state: ControlState,
        clock: Callable[[], float] = time.time,
        watch: BalanceWatch | None = None,
    ) -> None:
        self.state = state
        self.clock = clock
        self.watch = watch  # set by the composition root (control/app.py)

    # --- balance -----------------------------------------------------------------------------

    async def balance(self, org_id: str) -> dict[str, int]:
        total, held = await funds(self.state.db, org_id)
        return {"available": total - held, "reserved": held}

    async def grant(self, org_id: str, amount: int, reason: str, actor: str) -> int:
        """Adds `amount` to the org's ledger; refused (BalanceCeiling) if its total would pass
        MAX_BALANCE."""
        async with self.state.transaction() as tx:
            await lock_org(tx, org_id)
            total, _ = await funds(tx, org_id)
            if total + amount > MAX_BALANCE:
                raise BalanceCeiling(MAX_BALANCE - total)
            entry = await tx.fetch_one(
                "INSERT INTO ledger (org_id, kind, amount, reason, actor, created_at) "
                "VALUES (?, 'grant', ?, ?, ?, ?) RETURNING id",
                org_id,
                amount,
                reason,
                actor,
                self.clock(),
            )
            await self.state.audit(tx, actor, "credits.grant", org_id, {"amount": amount})
            assert entry is not None
            return int(entry["id"])

    async def refund(
        self, org_id: str, task_id: str, amount: int | None, reason: str, actor: str
    ) -> int:
        """Give back all or part of a task's charge: once per task, never more than charged.
        Raises LookupError (no charge for that task in this org) or ValueError (too much, or
        refunded before)."""
        async with self.state.transaction() as tx:
            await lock_org(tx, org_id)  # the refund of a task, checked and written once
            charge = await dbm.fetch_one(
                tx,
                "SELECT amount, key_id FROM ledger WHERE org_id=? AND task_id=? AND kind='charge'",
                org_id,
                task_id,
            )
            if charge is None:
                raise LookupError(task_id)
            charged = -charge["amount"]
            amount = charged if amount is None else amount
            if not 0 < amount <= charged:
                raise ValueError(f"a refund is 1 to {charged} micro-credits for this task")
            before = await dbm.fetch_one(
                tx, "SELECT 1 FROM ledger WHERE task_id=? AND kind='refund'", task_id
            )
            if before is not None:
                raise ValueError("this task was refunded before")
            entry = await tx.fetch_one(
                "INSERT INTO ledger (org_id, key_id, kind, amount, task_id, reason, actor, "
                "created_at) VALUES (?, ?, 'refund', ?, ?, ?, ?, ?) RETURNING id",
                org_id,
                charge["key_id"],
                amount,
                task_id,
                reason,
                actor,
                self.clock(),
            )
            detail = {"amount": amount, "task_id": task_id}
            await self.state.audit(tx, actor, "credits.refund", org_id, detail)
            assert entry is not None
            return int(entry["id"])

    # --- the life of a create ----------------------------------------------------------------

    async def reserve(self, hold: Hold) -> Refusal | None:
        now = self.clock()
        async with self.state.transaction() as tx:
            await lock_org(tx, hold.org_id)
            asked = await dbm.fetch_one(
                tx, "SELECT status FROM reservations WHERE id=?", hold.request_id
            )
            if asked is not None and asked["status"] == "held":
                # Asked again for the same create (an edge failing over to another control
                # plane on this database after a timeout): the first ask's hold stands, once.
                return None
            if await self._disputed(tx, hold.org_id):
                return Refusal(
                    "PaymentDisputed",
                    "A payment of this organization is disputed: new tasks are suspended until "
                    "the dispute is closed.",
                )
            total, held = await funds(tx, hold.org_id)
            balance = total - held
            if balance < hold.amount:
                return Refusal(
                    "InsufficientCredits",
                    f"This task can cost up to {hold.amount} micro-credits; "
                    f"{max(balance, 0)} are available.",
                )
            for scope, owner in (("org", hold.org_id), ("key", hold.key_id)):
                limit = await self._spend_limit(tx, scope, owner)
                if limit is None:
                    continue
                spent = await self._spent(tx, scope, owner, period_start(now, limit["period"]))
                if spent + hold.amount > limit["amount"]:
                    return Refusal(
                        "SpendLimitExceeded",
                        f"The {scope}'s spend limit of {limit['amount']} micro-credits per "
                        f"{limit['period']} would be exceeded ({spent} spent or reserved).",
                    )
            await tx.execute(
                "INSERT INTO reservations (id, org_id, key_id, amount, model, tier, "
                "generate_audio, callback_webhook, unit_price, resolution, video_input, status, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'held', ?)",
                (
                    hold.request_id,
                    hold.org_id,
                    hold.key_id,
                    hold.amount,
                    hold.model,
                    hold.tier,
                    hold.generate_audio,
                    hold.callback_webhook,
                    hold.unit_price or None,
                    hold.resolution or None,
                    hold.video_input,
                    now,
                ),
            )
        return None

    async def _disputed(self, tx: Any, org_id: str) -> bool:
        row = await dbm.fetch_one(
            tx, "SELECT 1 FROM disputes WHERE org_id=? AND closed_at IS NULL LIMIT 1", org_id
        )
        return row is not None

    async def _spend_limit(self, tx: Any, scope: str, owner: str) -> dict[str, Any] | None:
        table = "orgs" if scope == "org" else "api_keys"
        row = await dbm.fetch_one(tx, f"SELECT spend_limit FROM {table} WHERE id=?", owner)
        return dbm.loads(row["spend_limit"]) if row is not None else None

    async def _spent(self, tx: Any, scope: str, owner: str, since: float) -> int:
        column = "org_id" if scope == "org" else "key_id"
        row = await dbm.fetch_one(
            tx,
            f"SELECT (SELECT COALESCE(-SUM(amount), 0) FROM ledger "
            f"  WHERE {column}=? AND kind='charge' AND created_at>=?) + "
            f"(SELECT COALESCE(SUM(amount), 0) FROM reservations "
            f"  WHERE {column}=? AND status='held' AND created_at>=?) AS spent",
            owner,
            since,
            owner,
            since,
        )
        assert row is not None
        return int(row["spent"])

    async def assign(self, request_id: str, task_id: str) -> None:
        """The upstream accepted the create: the task, and its hold, belong to the org."""
        async with self.state.transaction() as tx:
            await assign_hold(tx, request_id, task_id, self.clock())

    async def release(self, request_id: str) -> None:
        """The create failed: nothing was started, the hold goes."""
        async with self.state.transaction() as tx:
            await release_hold(tx, request_id, self.clock())

    async def settle(self, task_id: str, status: str, completion_tokens: int | None) -> int | None:
        """The task ended: charge a success, release the rest. Exactly once per task: returns
        the amount charged by this call, or None if the task was settled before (or unknown)."""
        if status not in ENDED:
            await self._touch(task_id, status)
            return None
        now = self.clock()
        woke = False
        async with self.state.transaction() as tx:
            # Claimed by the one statement that ends the hold: of two control planes settling a
            # task at once, one changes the row and charges; the other finds nothing held.
            hold = await dbm.fetch_one(
                tx,
                "UPDATE reservations SET status='settled', settled_at=? "
                "WHERE task_id=? AND status='held' RETURNING *",
                now,
                task_id,
            )
            if hold is None:
                return None
            amount = 0
            if status == SUCCEEDED:
                tokens = completion_tokens or 0
                unit = self._unit_price(hold)
                amount = hold["amount"] if unit is None else pricing.charge(unit, tokens)
                await tx.execute(
                    "INSERT INTO ledger (org_id, key_id, kind, amount, task_id, reason, actor, "
                    "created_at) VALUES (?, ?, 'charge', ?, ?, ?, 'system:billing', ?)",
                    (hold["org_id"], hold["key_id"], -amount, task_id, f"{tokens} tokens", now),
                )
            await tx.execute(
                "UPDATE tasks SET status=?, charged=?, tokens=?, updated_at=?, finished_at=? "
                "WHERE id=?",
                (status, amount, completion_tokens, now, now, task_id),
            )
            if self.watch is not None:
                woke = await self.watch.check(tx, hold["org_id"], now)
        if woke and self.watch is not None:
            self.watch.wake()
        return amount

    def _unit_price(self, hold: Row) -> Fraction | None:
        """The unit price recorded on the hold; for a hold made before prices were recorded,
        the catalog's for its model and tier at the family's default resolution. None: the
        model is no longer in the catalog, and the hold itself is charged."""
        if hold["unit_price"]:
            return pricing.parse_price(hold["unit_price"])
        catalog = self.state.catalog
        family = catalog.match(hold["model"])
        if family is None or hold["tier"] not in family.service_tiers:
            log.warning(
                "hold %s: model %s is not priced; the hold is charged", hold["id"], hold["model"]
            )
            return None
        audio = (
            family.audio_default if hold["generate_audio"] is None else bool(hold["generate_audio"])
        )
        resolution = hold["resolution"] or family.default_resolution
        if resolution not in family.sizes:
            resolution = family.default_resolution
        return catalog.unit_price(
            family,
            hold["tier"],
            audio and family.audio_supported,
            resolution,
            bool(hold["video_input"]),
        )

    async def _touch(self, task_id: str, status: str) -> None:
        async with self.state.transaction() as tx:
            await tx.execute(
                "UPDATE tasks SET status=?, updated_at=? WHERE id=? AND finished_at IS NULL "
                "AND status!=?",
                (status, self.clock(), task_id, status),
            )

    async def recover(self, before: float | None = None) -> int:
        """Holds made before `before` (default: HOLD_SECONDS ago) whose create never answered
        (the process died between reserving and relaying, or before learning the task id) are
        released, at start and every minute (control/jobs/holds.py, after the orphan scan gave
        the tasks it found their holds). Returns how many. A hold whose task the upstream did
        accept is taken again when that create's usage record arrives (assign_hold): an edge
        apart may still hold it in its spool."""
        now = self.clock()
        async with self.state.transaction() as tx:
            cursor = await tx.execute(
                "UPDATE reservations SET status='released', settled_at=? "
                "WHERE status='held' AND task_id IS NULL AND created_at<?",
                (now, now - HOLD_SECONDS if before is None else before),
            )
        return cursor.rowcount
