"""The credits wallet (control/store/wallet.py): ledger-derived balance, reservations against
balance and spend limits, settlement exactly once per task, crash recovery and task ownership.

Every test runs against a real SQLite file under tmp_path (ControlState.open), the real price table
(config/models.toml) and an injected clock; async bodies run with asyncio.run.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from control.store import db as dbm
from control.store import migrations
from control.store.state import ControlState
from control.store.wallet import HOLD_SECONDS, DatabaseWallet
from proxy.core import pricing
from proxy.core.seedance.catalog import Catalog
from proxy.core.wallet import Hold, Refusal

CATALOG = Catalog.load()


def cost(model: str, tier: str, tokens: int, generate_audio: bool | None = None) -> int:
    """What a hold made without a recorded unit price (before prices were recorded) is charged:
    the catalog's price for its model and tier at the family's default resolution."""
    family = CATALOG.match(model)
    assert family is not None
    audio = family.audio_default if generate_audio is None else generate_audio
    unit = CATALOG.unit_price(
        family, tier, audio and family.audio_supported, family.default_resolution, False
    )
    return pricing.charge(unit, tokens)


ORG = "org_acme"
KEY = "key_acme_ci"
OTHER_ORG = "org_other"
OTHER_KEY = "key_other"

MODEL = "seedance-1-0-pro-fast"  # 1 USD per million tokens at `default`: 1 micro-credit a token
TIER = "default"


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    """A UTC moment as a Unix timestamp."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


T0 = ts(2025, 1, 15, 12, 0, 0)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Env:
    state: ControlState
    wallet: DatabaseWallet
    clock: Clock

    async def add_org(self, org_id: str, spend_limit: dict[str, Any] | None = None) -> None:
        await self.state.db.execute(
            "INSERT INTO orgs (id, name, email, spend_limit, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (org_id, org_id, f"{org_id}@example.com", dbm.dumps(spend_limit), T0, T0),
        )

    async def add_key(
        self, key_id: str, org_id: str, spend_limit: dict[str, Any] | None = None
    ) -> None:
        await self.state.db.execute(
            "INSERT INTO api_keys (id, org_id, name, environment, secret_hash, spend_limit, "
            "created_at, updated_at) VALUES (?, ?, ?, 'live', ?, ?, ?, ?)",
            (key_id, org_id, key_id, "hash-" + key_id, dbm.dumps(spend_limit), T0, T0),
        )

    async def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(row) for row in await dbm.fetch_all(self.state.db, sql, *args)]

    async def one(self, sql: str, *args: Any) -> dict[str, Any]:
        rows = await self.rows(sql, *args)
        assert len(rows) == 1, rows
        return rows[0]

    async def dump(self) -> dict[str, list[dict[str, Any]]]:
        """Everything the wallet writes, to show that a call wrote nothing."""
        return {
            table: await self.rows(f"SELECT * FROM {table} ORDER BY rowid")
            for table in ("ledger", "reservations", "tasks", "audit")
        }

    async def reserve(
        self,
        request_id: str,
        amount: int,
        *,
        org_id: str = ORG,
        key_id: str = KEY,
        model: str = MODEL,
        tier: str = TIER,
        generate_audio: bool | None = None,
    ) -> Refusal | None:
        hold = Hold(request_id, org_id, key_id, amount, model, tier, generate_audio)
        return await self.wallet.reserve(hold)

    async def task(
        self, request_id: str, task_id: str, amount: int, *, org_id: str = ORG, key_id: str = KEY
    ) -> None:
        """A create that the upstream accepted: reserved, then assigned its task id."""
        assert await self.reserve(request_id, amount, org_id=org_id, key_id=key_id) is None
        await self.wallet.assign(request_id, task_id)


type Body = Callable[[Env], Awaitable[None]]
type Runner = Callable[..., None]


@pytest.fixture
def run(tmp_path: Path) -> Runner:
    """Run an async body against a fresh wallet; ORG/KEY and OTHER_ORG/OTHER_KEY exist, without
    spend limits, and ORG holds no credits yet."""

    def runner(body: Body, *, start: float = T0, limits: bool = True) -> None:
        async def main() -> None:
            state = await ControlState.open(tmp_path / "data")
            clock = Clock(start)
            env = Env(state, DatabaseWallet(state, clock=clock), clock)
            try:
                if limits:
                    await env.add_org(ORG)
                    await env.add_key(KEY, ORG)
                    await env.add_org(OTHER_ORG)
                    await env.add_key(OTHER_KEY, OTHER_ORG)
                await asyncio.wait_for(body(env), timeout=10)
            finally:
                await state.close()

        asyncio.run(main())

    return runner


# --- balance, grant, reserve, release ----------------------------------------------------------


def test_grant_then_balance_is_all_available(run: Runner) -> None:
    async def body(env: Env) -> None:
        assert await env.wallet.balance(ORG) == {"available": 0, "reserved": 0}
        row_id = await env.wallet.grant(ORG, 7_000_000, "welcome", "admin:alice")
        assert await env.wallet.balance(ORG) == {"available": 7_000_000, "reserved": 0}
        ledger = await env.rows("SELECT * FROM ledger")
        assert ledger == [
            {
                "id": row_id,
                "org_id": ORG,
                "key_id": None,
                "kind": "grant",
                "amount": 7_000_000,
                "task_id": None,
                "reason": "welcome",
                "actor": "admin:alice",
                "created_at": T0,
                "payment_id": None,
            }
        ]
        # grants are audited
        audit = await env.rows("SELECT actor, action, target FROM audit")
        assert audit == [{"actor": "admin:alice", "action": "credits.grant", "target": ORG}]
        # another org is untouched
        assert await env.wallet.balance(OTHER_ORG) == {"available": 0, "reserved": 0}

    run(body)


def test_reservation_moves_amount_to_reserved_and_release_gives_it_back(run: Runner) -> None:
    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 5_000_000, "top-up", "admin")
        assert await env.reserve("req-1", 1_200_000) is None
        assert await env.wallet.balance(ORG) == {"available": 3_800_000, "reserved": 1_200_000}
        hold = await env.one("SELECT * FROM reservations")
        assert hold["id"] == "req-1"
        assert hold["org_id"] == ORG and hold["key_id"] == KEY
        assert hold["amount"] == 1_200_000 and hold["status"] == "held"
        assert hold["task_id"] is None and hold["created_at"] == T0
        # a reservation is not a ledger entry
        assert len(await env.rows("SELECT * FROM ledger")) == 1

        env.clock.now = T0 + 5
        await env.wallet.release("req-1")
        assert await env.wallet.balance(ORG) == {"available": 5_000_000, "reserved": 0}
        hold = await env.one("SELECT status, settled_at FROM reservations")
        assert hold == {"status": "released", "settled_at": T0 + 5}

    run(body)


def test_balance_is_derived_from_the_ledger(run: Runner) -> None:
    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 4_000_000, "a", "admin")
        await env.wallet.grant(ORG, 1_000_000, "b", "admin")
        await env.wallet.grant(OTHER_ORG, 9_000_000, "other", "admin")
        assert await env.reserve("req-1", 700_000) is None

        ledger = await env.rows("SELECT amount FROM ledger WHERE org_id=?", ORG)
        held = await env.rows(
            "SELECT amount FROM reservations WHERE org_id=? AND status='held'", ORG
        )
        total = sum(row["amount"] for row in ledger)
        reserved = sum(row["amount"] for row in held)
        assert await env.wallet.balance(ORG) == {
            "available": total - reserved,
            "reserved": reserved,
        }
        assert total == 5_000_000 and reserved == 700_000

        # a row written into the ledger by any path changes the balance: nothing is cached
        await env.state.db.execute(
            "INSERT INTO ledger (org_id, kind, amount, created_at) VALUES (?, 'charge', ?, ?)",
            (ORG, -300_000, T0),
        )
        assert await env.wallet.balance(ORG) == {"available": 4_000_000, "reserved": 700_000}

    run(body)


def test_ledger_entries_are_final(run: Runner) -> None:
    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 4_000_000, "a", "admin")
        for change in ("amount = 1", "org_id = 'org_other'"):
            with pytest.raises(sqlite3.IntegrityError, match="never changed"):
                await env.state.db.execute(f"UPDATE ledger SET {change}")
        await env.state.db.execute("UPDATE ledger SET reason = 'corrected'")  # words may change
        assert await env.wallet.balance(ORG) == {"available": 4_000_000, "reserved": 0}

    run(body)


def test_a_file_from_before_ledger_totals_keeps_its_balances(tmp_path: Path) -> None:
    """The migration that adds `ledger_totals` fills it from the ledger already written."""
    path = tmp_path / "data" / "nextapi.sqlite3"
    path.parent.mkdir()
    old = sqlite3.connect(path, isolation_level=None)
    known = migrations.load()
    adds_totals = next(i for i, m in enumerate(known) if "TABLE ledger_totals" in m.sql)
    for migration in known[:adds_totals]:
        old.executescript(
            f"BEGIN;\n{migration.sql}\nPRAGMA user_version={migration.number};\nCOMMIT;"
        )
    entries = [(ORG, 5_000_000), (ORG, -1_250_000), (OTHER_ORG, 7), (ORG, 250_000)]
    old.executemany(
        "INSERT INTO ledger (org_id, kind, amount, created_at) VALUES (?, 'grant', ?, 0)", entries
    )
    old.close()

    async def main() -> None:
        state = await ControlState.open(tmp_path / "data")
        try:
            wallet = DatabaseWallet(state)
            assert await wallet.balance(ORG) == {"available": 4_000_000, "reserved": 0}
            assert await wallet.balance(OTHER_ORG) == {"available": 7, "reserved": 0}
            await wallet.grant(OTHER_ORG, 3, "more", "admin")  # and kept from there on
            assert await wallet.balance(OTHER_ORG) == {"available": 10, "reserved": 0}
        finally:
            await state.close()

    asyncio.run(main())


def test_insufficient_credits_refuses_and_writes_nothing(run: Runner) -> None:
    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 2_000_000, "top-up", "admin")
        assert await env.reserve("req-1", 1_500_000) is None
        before = await env.dump()

        refusal = await env.reserve("req-2", 500_001)  # 500,000 are available
        assert isinstance(refusal, Refusal)
        assert refusal.code == "InsufficientCredits"
        assert "500001" in refusal.message and "500000" in refusal.message
        assert await env.dump() == before
        assert await env.wallet.balance(ORG) == {"available": 500_000, "reserved": 1_500_000}

        # exactly the available amount is fine
        assert await env.reserve("req-3", 500_000) is None
        assert await env.wallet.balance(ORG) == {"available": 0, "reserved": 2_000_000}

    run(body)


def test_insufficient_credits_without_any_grant(run: Runner) -> None:
    async def body(env: Env) -> None:
        refusal = await env.reserve("req-1", 1)
        assert refusal is not None and refusal.code == "InsufficientCredits"
        assert await env.rows("SELECT * FROM reservations") == []

    run(body)


def test_concurrent_reserves_never_overdraw(run: Runner) -> None:
    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 10_000_000, "top-up", "admin")
        results = await asyncio.gather(*(env.reserve(f"req-{n:02d}", 1_000_000) for n in range(50)))
        accepted = [r for r in results if r is None]
        refused = [r for r in results if r is not None]
        assert len(accepted) == 10
        assert len(refused) == 40
        assert {r.code for r in refused} == {"InsufficientCredits"}
        assert await env.wallet.balance(ORG) == {"available": 0, "reserved": 10_000_000}
        held = await env.rows("SELECT amount FROM reservations WHERE status='held'")
        assert len(held) == 10 and sum(row["amount"] for row in held) == 10_000_000

    run(body)


# --- spend limits ---------------------------------------------------------------------------

# (period, a moment early in the period, its last second, the first second of the next one)
BOUNDARIES = {
    "day": (ts(2025, 3, 14, 8, 0, 0), ts(2025, 3, 14, 23, 59, 59), ts(2025, 3, 15, 0, 0, 0)),
    "month": (ts(2025, 1, 5, 8, 0, 0), ts(2025, 1, 31, 23, 59, 59), ts(2025, 2, 1, 0, 0, 0)),
}


@pytest.mark.parametrize("scope", ["org", "key"])
@pytest.mark.parametrize("period", ["day", "month"])
def test_spend_limit_rolls_over_at_the_period_boundary(
    run: Runner, scope: str, period: str
) -> None:
    early, last, first_next = BOUNDARIES[period]
    limit = {"amount": 3_000_000, "period": period}

    async def body(env: Env) -> None:
        await env.add_org("org_lim", limit if scope == "org" else None)
        await env.add_key("key_lim", "org_lim", limit if scope == "key" else None)
        await env.add_key("key_lim2", "org_lim")
        await env.wallet.grant("org_lim", 100_000_000, "top-up", "admin")

        # early in the period: a charged task and a hold still held
        env.clock.now = early
        await env.task("req-a", "task-a", 1_500_000, org_id="org_lim", key_id="key_lim")
        charge = cost(MODEL, TIER, 1_200_000)
        assert await env.wallet.settle("task-a", "succeeded", 1_200_000) == charge
        assert await env.reserve("req-b", 800_000, org_id="org_lim", key_id="key_lim") is None
        spent = charge + 800_000
        assert spent == 2_000_000

        # the last second of the period: the limit would be exceeded
        env.clock.now = last
        before = await env.dump()
        over = 3_000_000 - spent + 1
        refusal = await env.reserve("req-c", over, org_id="org_lim", key_id="key_lim")
        assert isinstance(refusal, Refusal)
        assert refusal.code == "SpendLimitExceeded"
        assert f"The {scope}'s spend limit of 3000000 micro-credits per {period}" in (
            refusal.message
        )
        assert f"({spent} spent or reserved)" in refusal.message
        assert await env.dump() == before

        # the org's limit covers every key of the org; a key's limit only that key
        other = await env.reserve("req-d", over, org_id="org_lim", key_id="key_lim2")
        if scope == "org":
            assert other is not None and other.code == "SpendLimitExceeded"
        else:
            assert other is None
            await env.wallet.release("req-d")

        # the first second of the next period: the same hold is accepted
        env.clock.now = first_next
        assert await env.reserve("req-c", over, org_id="org_lim", key_id="key_lim") is None
        assert (await env.one("SELECT created_at FROM reservations WHERE id='req-c'"))[
            "created_at"
        ] == first_next

    run(body)


@pytest.mark.parametrize("scope", ["org", "key"])
def test_spend_limit_counts_charges_and_holds_of_the_period(run: Runner, scope: str) -> None:
    limit = {"amount": 5_000_000, "period": "month"}

    async def body(env: Env) -> None:
        await env.add_org("org_lim", limit if scope == "org" else None)
        await env.add_key("key_lim", "org_lim", limit if scope == "key" else None)
        await env.wallet.grant("org_lim", 100_000_000, "top-up", "admin")

        # last month's charge does not count
        env.clock.now = ts(2024, 12, 31, 23, 0, 0)
        await env.task("req-old", "task-old", 4_000_000, org_id="org_lim", key_id="key_lim")
        assert await env.wallet.settle("task-old", "succeeded", 4_000_000) == 4_000_000

        env.clock.now = ts(2025, 1, 10, 9, 0, 0)
        await env.task("req-1", "task-1", 2_000_000, org_id="org_lim", key_id="key_lim")
        charge = await env.wallet.settle("task-1", "succeeded", 1_500_000)
        assert charge == cost(MODEL, TIER, 1_500_000) == 1_500_000
        assert await env.reserve("req-2", 1_000_000, org_id="org_lim", key_id="key_lim") is None
        # a released hold and a failed task's settled hold do not count
        assert await env.reserve("req-3", 900_000, org_id="org_lim", key_id="key_lim") is None
        await env.wallet.release("req-3")
        await env.task("req-4", "task-4", 700_000, org_id="org_lim", key_id="key_lim")
        assert await env.wallet.settle("task-4", "failed", None) == 0
        # counted: the charge (1,500,000) and the held req-2 (1,000,000)

        env.clock.now = ts(2025, 1, 20, 9, 0, 0)
        refusal = await env.reserve("req-5", 2_500_001, org_id="org_lim", key_id="key_lim")
        assert refusal is not None and refusal.code == "SpendLimitExceeded"
        assert "(2500000 spent or reserved)" in refusal.message
        # reaching the limit exactly is allowed; a micro-credit more is not
        assert await env.reserve("req-5", 2_500_000, org_id="org_lim", key_id="key_lim") is None
        refusal = await env.reserve("req-6", 1, org_id="org_lim", key_id="key_lim")
        assert refusal is not None and refusal.code == "SpendLimitExceeded"
        assert "(5000000 spent or reserved)" in refusal.message

    run(body)


def test_org_and_key_limits_each_apply(run: Runner) -> None:
    async def body(env: Env) -> None:
        await env.add_org("org_lim", {"amount": 3_000_000, "period": "month"})
        await env.add_key("key_tight", "org_lim", {"amount": 1_000_000, "period": "day"})
        await env.add_key("key_loose", "org_lim", {"amount": 50_000_000, "period": "month"})
        await env.wallet.grant("org_lim", 100_000_000, "top-up", "admin")

        # the key's daily limit binds first for key_tight
        refusal = await env.reserve("req-1", 1_000_001, org_id="org_lim", key_id="key_tight")
        assert refusal is not None and refusal.code == "SpendLimitExceeded"
        assert "key's spend limit of 1000000 micro-credits per day" in refusal.message
        assert "org's" not in refusal.message

        # key_loose is bound by the org's monthly limit, not by its own
        refusal = await env.reserve("req-2", 3_000_001, org_id="org_lim", key_id="key_loose")
        assert refusal is not None and refusal.code == "SpendLimitExceeded"
        assert "org's spend limit of 3000000 micro-credits per month" in refusal.message
        assert "key's" not in refusal.message

        # the org's limit counts the holds of all its keys
        assert await env.reserve("req-3", 1_000_000, org_id="org_lim", key_id="key_tight") is None
        assert await env.reserve("req-4", 2_000_000, org_id="org_lim", key_id="key_loose") is None
        refusal = await env.reserve("req-5", 1, org_id="org_lim", key_id="key_loose")
        assert refusal is not None and "org's" in refusal.message
        assert "(3000000 spent or reserved)" in refusal.message
        assert await env.wallet.balance("org_lim") == {
            "available": 97_000_000,
            "reserved": 3_000_000,
        }

    run(body)


def test_insufficient_credits_is_checked_before_spend_limits(run: Runner) -> None:
    async def body(env: Env) -> None:
        await env.add_org("org_lim", {"amount": 1_000, "period": "day"})
        await env.add_key("key_lim", "org_lim")
        await env.wallet.grant("org_lim", 500, "top-up", "admin")
        refusal = await env.reserve("req-1", 2_000, org_id="org_lim", key_id="key_lim")
        assert refusal is not None and refusal.code == "InsufficientCredits"

    run(body)


# --- settlement ------------------------------------------------------------------------------

SETTLE_CASES = [
    # (model, tier, generate_audio of the hold, tokens)
    ("seedance-1-0-pro-fast", "default", None, 1_234_567),
    ("seedance-1-0-pro", "flex", None, 108_900),
    ("seedance-1-5-pro", "default", False, 108_900),  # silent price
    ("seedance-1-5-pro", "default", True, 108_900),  # audio price
    ("seedance-1-5-pro", "flex", None, 333_333),  # the family's default: audio
    ("doubao-seedance-2-0-260128", "default", None, 98_765),
]


@pytest.mark.parametrize(("model", "tier", "audio", "tokens"), SETTLE_CASES)
def test_settle_succeeded_charges_the_actual_tokens_once(
    run: Runner, model: str, tier: str, audio: bool | None, tokens: int
) -> None:
    expected = cost(model, tier, tokens, generate_audio=audio)

    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 10_000_000, "top-up", "admin")
        hold = Hold("req-1", ORG, KEY, 3_000_000, model, tier, audio)
        assert await env.wallet.reserve(hold) is None
        env.clock.now = T0 + 1
        await env.wallet.assign("req-1", "cgt-1")

        env.clock.now = T0 + 60
        assert await env.wallet.settle("cgt-1", "succeeded", tokens) == expected

        charges = await env.rows("SELECT * FROM ledger WHERE kind='charge'")
        assert len(charges) == 1
        assert charges[0] | {"id": None} == {
            "id": None,
            "org_id": ORG,
            "key_id": KEY,
            "kind": "charge",
            "amount": -expected,
            "task_id": "cgt-1",
            "reason": f"{tokens} tokens",
            "actor": "system:billing",
            "created_at": T0 + 60,
            "payment_id": None,
        }
        hold_row = await env.one("SELECT status, task_id, settled_at FROM reservations")
        assert hold_row == {"status": "settled", "task_id": "cgt-1", "settled_at": T0 + 60}
        task = await env.one("SELECT * FROM tasks")
        assert task == {
            "id": "cgt-1",
            "org_id": ORG,
            "key_id": KEY,
            "model": model,
            "service_tier": tier,
            "status": "succeeded",
            "reserved": 3_000_000,
            "charged": expected,
            "tokens": tokens,
            "created_at": T0 + 1,
            "updated_at": T0 + 60,
            "finished_at": T0 + 60,
            "callback_webhook": None,
            "video_deleted_at": None,
            "unit_price": None,
        }
        assert await env.wallet.balance(ORG) == {
            "available": 10_000_000 - expected,
            "reserved": 0,
        }

    run(body)


def test_settle_charge_depends_on_generate_audio_of_the_hold(run: Runner) -> None:
    """The silent and audio prices of 1.5 pro differ, so the hold's flag must reach the price."""
    silent = cost("seedance-1-5-pro", "default", 1_000_000, generate_audio=False)
    audio = cost("seedance-1-5-pro", "default", 1_000_000, generate_audio=True)
    assert silent != audio

    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 10_000_000, "top-up", "admin")
        for n, flag in enumerate([False, True, None]):
            hold = Hold(f"req-{n}", ORG, KEY, 3_000_000, "seedance-1-5-pro", "default", flag)
            assert await env.wallet.reserve(hold) is None
            await env.wallet.assign(f"req-{n}", f"task-{n}")
        assert await env.wallet.settle("task-0", "succeeded", 1_000_000) == silent
        assert await env.wallet.settle("task-1", "succeeded", 1_000_000) == audio
        assert await env.wallet.settle("task-2", "succeeded", 1_000_000) == audio

    run(body)


@pytest.mark.parametrize(
    ("status", "tokens"),
    [
        ("succeeded", 1_000_000),
        ("succeeded", 2_000_000),
        ("failed", None),
        ("cancelled", None),
        ("expired", None),
    ],
)
def test_settle_again_returns_none_and_writes_nothing(
    run: Runner, status: str, tokens: int | None
) -> None:
    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 10_000_000, "top-up", "admin")
        await env.task("req-1", "task-1", 3_000_000)
        env.clock.now = T0 + 10
        assert await env.wallet.settle("task-1", "succeeded", 1_000_000) == 1_000_000
        before = await env.dump()

        env.clock.now = T0 + 20
        assert await env.wallet.settle("task-1", status, tokens) is None
        # a late non-terminal update does not reopen the task either
        assert await env.wallet.settle("task-1", "running", None) is None
        assert await env.dump() == before
        assert await env.wallet.balance(ORG) == {"available": 9_000_000, "reserved": 0}

    run(body)


def test_concurrent_settles_charge_exactly_once(run: Runner) -> None:
    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 10_000_000, "top-up", "admin")
        await env.task("req-1", "task-1", 3_000_000)
        results = await asyncio.gather(
            env.wallet.settle("task-1", "succeeded", 1_000_000),
            env.wallet.settle("task-1", "succeeded", 1_000_000),
            env.wallet.settle("task-1", "failed", None),
        )
        charged = [r for r in results if r is not None]
        assert len(charged) == 1 and results.count(None) == 2
        assert charged[0] == 1_000_000  # the first call, a success, wins
        charges = await env.rows("SELECT amount FROM ledger WHERE task_id='task-1'")
        assert charges == [{"amount": -1_000_000}]
        assert await env.wallet.balance(ORG) == {"available": 9_000_000, "reserved": 0}

    run(body)


def test_unique_index_allows_one_charge_row_per_task(run: Runner) -> None:
    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 10_000_000, "top-up", "admin")
        await env.task("req-1", "task-1", 3_000_000)
        await env.wallet.settle("task-1", "succeeded", 1_000)
        with pytest.raises(sqlite3.IntegrityError):
            await env.state.db.execute(
                "INSERT INTO ledger (org_id, key_id, kind, amount, task_id, created_at) "
                "VALUES (?, ?, 'charge', -5, 'task-1', ?)",
                (ORG, KEY, T0),
            )
        assert len(await env.rows("SELECT * FROM ledger WHERE kind='charge'")) == 1

    run(body)


@pytest.mark.parametrize("status", ["failed", "cancelled", "expired"])
def test_settle_unsuccessful_charges_nothing_and_releases(run: Runner, status: str) -> None:
    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 10_000_000, "top-up", "admin")
        await env.task("req-1", "task-1", 3_000_000)
        assert await env.wallet.balance(ORG) == {"available": 7_000_000, "reserved": 3_000_000}
        env.clock.now = T0 + 30
        # even with tokens reported, an unsuccessful task costs nothing
        assert await env.wallet.settle("task-1", status, 5_000) == 0

        assert await env.rows("SELECT * FROM ledger WHERE kind!='grant'") == []
        assert await env.wallet.balance(ORG) == {"available": 10_000_000, "reserved": 0}
        hold = await env.one("SELECT status, settled_at FROM reservations")
        assert hold == {"status": "settled", "settled_at": T0 + 30}
        task = await env.one("SELECT status, charged, finished_at FROM tasks")
        assert task == {"status": status, "charged": 0, "finished_at": T0 + 30}
        assert await env.wallet.unsettled_tasks() == []

    run(body)


def test_settle_unknown_task_returns_none(run: Runner) -> None:
    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 10_000_000, "top-up", "admin")
        before = await env.dump()
        assert await env.wallet.settle("no-such-task", "succeeded", 1_000) is None
        assert await env.wallet.settle("no-such-task", "running", None) is None
        assert await env.dump() == before

    run(body)


def test_non_terminal_settle_only_records_the_status(run: Runner) -> None:
    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 10_000_000, "top-up", "admin")
        await env.task("req-1", "task-1", 3_000_000)
        hold_before = await env.rows("SELECT * FROM reservations")
        ledger_before = await env.rows("SELECT * FROM ledger")

        env.clock.now = T0 + 12
        assert await env.wallet.settle("task-1", "running", None) is None
        task = await env.one("SELECT status, charged, tokens, updated_at, finished_at FROM tasks")
        assert task == {
            "status": "running",
            "charged": None,
            "tokens": None,
            "updated_at": T0 + 12,
            "finished_at": None,
        }
        assert await env.rows("SELECT * FROM reservations") == hold_before
        assert await env.rows("SELECT * FROM ledger") == ledger_before
        assert await env.wallet.balance(ORG) == {"available": 7_000_000, "reserved": 3_000_000}
        assert await env.wallet.unsettled_tasks() == ["task-1"]

        # the same status again changes nothing (not even updated_at)
        env.clock.now = T0 + 20
        assert await env.wallet.settle("task-1", "running", None) is None
        assert (await env.one("SELECT updated_at FROM tasks"))["updated_at"] == T0 + 12

        # the task can still be settled afterwards
        assert await env.wallet.settle("task-1", "succeeded", 10) == cost(MODEL, TIER, 10)

    run(body)


# --- release and recovery ----------------------------------------------------------------------


def test_release_after_assign_does_nothing(run: Runner) -> None:
    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 10_000_000, "top-up", "admin")
        await env.task("req-1", "task-1", 3_000_000)
        before = await env.dump()
        await env.wallet.release("req-1")
        assert await env.dump() == before
        assert await env.wallet.balance(ORG) == {"available": 7_000_000, "reserved": 3_000_000}
        hold = await env.one("SELECT status, task_id FROM reservations")
        assert hold == {"status": "held", "task_id": "task-1"}

    run(body)


def test_release_is_idempotent_and_ignores_unknown_ids(run: Runner) -> None:
    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 10_000_000, "top-up", "admin")
        assert await env.reserve("req-1", 3_000_000) is None
        env.clock.now = T0 + 1
        await env.wallet.release("req-1")
        env.clock.now = T0 + 2
        await env.wallet.release("req-1")
        await env.wallet.release("req-unknown")
        hold = await env.one("SELECT status, settled_at FROM reservations")
        assert hold == {"status": "released", "settled_at": T0 + 1}
        assert await env.wallet.balance(ORG) == {"available": 10_000_000, "reserved": 0}

    run(body)


def test_assign_records_the_task(run: Runner) -> None:
    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 10_000_000, "top-up", "admin")
        hold = Hold("req-1", ORG, KEY, 2_500_000, "seedance-1-0-pro", "flex", None)
        assert await env.wallet.reserve(hold) is None
        env.clock.now = T0 + 3
        await env.wallet.assign("req-1", "task-1")
        task = await env.one("SELECT * FROM tasks")
        assert task == {
            "id": "task-1",
            "org_id": ORG,
            "key_id": KEY,
            "model": "seedance-1-0-pro",
            "service_tier": "flex",
            "status": "queued",
            "reserved": 2_500_000,
            "charged": None,
            "tokens": None,
            "created_at": T0 + 3,
            "updated_at": T0 + 3,
            "finished_at": None,
            "callback_webhook": None,
            "video_deleted_at": None,
            "unit_price": None,
        }
        assert (await env.one("SELECT task_id FROM reservations"))["task_id"] == "task-1"

    run(body)


def test_recover_releases_only_stale_unassigned_holds(run: Runner) -> None:
    now = T0 + 10_000

    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 50_000_000, "top-up", "admin")
        ages = {
            "req-stale": HOLD_SECONDS + 1,
            "req-very-stale": 10 * HOLD_SECONDS,
            "req-edge": HOLD_SECONDS,  # exactly HOLD_SECONDS old: not older, kept
            "req-fresh": HOLD_SECONDS - 1,
            "req-assigned": 10 * HOLD_SECONDS,
        }
        for request_id, age in ages.items():
            env.clock.now = now - age
            assert await env.reserve(request_id, 1_000_000) is None
        await env.wallet.assign("req-assigned", "task-assigned")

        env.clock.now = now
        assert await env.wallet.recover() == 2
        rows = await env.rows("SELECT id, status, settled_at FROM reservations ORDER BY id")
        assert {row["id"]: (row["status"], row["settled_at"]) for row in rows} == {
            "req-assigned": ("held", None),
            "req-edge": ("held", None),
            "req-fresh": ("held", None),
            "req-stale": ("released", now),
            "req-very-stale": ("released", now),
        }
        assert await env.wallet.balance(ORG) == {"available": 47_000_000, "reserved": 3_000_000}
        # nothing more to recover
        assert await env.wallet.recover() == 0

    run(body)


# --- ownership -------------------------------------------------------------------------------


def test_owner_of_a_task(run: Runner) -> None:
    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 10_000_000, "top-up", "admin")
        await env.wallet.grant(OTHER_ORG, 10_000_000, "top-up", "admin")
        await env.task("req-1", "task-1", 1_000)
        await env.task("req-2", "task-2", 1_000, org_id=OTHER_ORG, key_id=OTHER_KEY)
        assert await env.wallet.owner("task-1") == ORG
        assert await env.wallet.owner("task-2") == OTHER_ORG
        assert await env.wallet.owner("no-such-task") is None
        # a hold that was never assigned owns no task
        assert await env.reserve("req-3", 1_000) is None
        assert await env.wallet.owner("req-3") is None

    run(body)


def test_org_tasks_newest_first_since_and_limit(run: Runner) -> None:
    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 10_000_000, "top-up", "admin")
        await env.wallet.grant(OTHER_ORG, 10_000_000, "top-up", "admin")
        for n, offset in enumerate([0, 10, 20, 30]):
            env.clock.now = T0 + offset
            await env.task(f"req-{n}", f"task-{n}", 1_000)
        env.clock.now = T0 + 30  # same moment as task-3: ties go by id, descending
        await env.task("req-4", "task-4", 1_000)
        env.clock.now = T0 + 25
        await env.task("req-x", "task-x", 1_000, org_id=OTHER_ORG, key_id=OTHER_KEY)

        assert await env.wallet.org_tasks(ORG, 0) == [
            "task-4",
            "task-3",
            "task-2",
            "task-1",
            "task-0",
        ]
        assert await env.wallet.org_tasks(ORG, T0 + 10) == ["task-4", "task-3", "task-2", "task-1"]
        assert await env.wallet.org_tasks(ORG, T0 + 11) == ["task-4", "task-3", "task-2"]
        assert await env.wallet.org_tasks(ORG, 0, limit=2) == ["task-4", "task-3"]
        assert await env.wallet.org_tasks(ORG, T0 + 31) == []
        assert await env.wallet.org_tasks(OTHER_ORG, 0) == ["task-x"]
        assert await env.wallet.org_tasks("org_nobody", 0) == []

    run(body)


def test_unsettled_tasks_lists_assigned_held_tasks_only(run: Runner) -> None:
    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 10_000_000, "top-up", "admin")
        await env.wallet.grant(OTHER_ORG, 10_000_000, "top-up", "admin")
        env.clock.now = T0 + 5
        await env.task("req-b", "task-b", 1_000)  # held, assigned
        env.clock.now = T0 + 1
        await env.task("req-a", "task-a", 1_000, org_id=OTHER_ORG, key_id=OTHER_KEY)
        env.clock.now = T0 + 9
        await env.task("req-c", "task-c", 1_000)
        assert await env.reserve("req-unassigned", 1_000) is None  # held, no task
        await env.task("req-done", "task-done", 1_000)
        await env.wallet.settle("task-done", "succeeded", 10)
        await env.task("req-failed", "task-failed", 1_000)
        await env.wallet.settle("task-failed", "failed", None)
        assert await env.reserve("req-released", 1_000) is None
        await env.wallet.release("req-released")
        env.clock.now = T0 + 12
        await env.task("req-running", "task-running", 1_000)
        await env.wallet.settle("task-running", "running", None)  # still held

        # oldest hold first, across orgs
        assert await env.wallet.unsettled_tasks() == [
            "task-a",
            "task-b",
            "task-c",
            "task-running",
        ]
        assert await env.wallet.unsettled_tasks(limit=2) == ["task-a", "task-b"]

    run(body)


def test_assign_after_recover_takes_the_hold_again(run: Runner) -> None:
    """A create answered after recover() released its hold (a restart while it was in flight)
    is still billed: the task exists upstream."""

    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 10_000_000, "top-up", "admin")
        assert await env.reserve("req-late", 1_000_000) is None
        env.clock.now += HOLD_SECONDS + 1
        assert await env.wallet.recover() == 1
        await env.wallet.assign("req-late", "cgt-late")
        assert await env.wallet.unsettled_tasks() == ["cgt-late"]
        assert await env.wallet.balance(ORG) == {"available": 9_000_000, "reserved": 1_000_000}

    run(body)


def test_a_creates_usage_record_assigns_or_releases_its_hold(run: Runner) -> None:
    """The edge could not tell the ledger (the control plane was away): the create's usage
    record does it on arrival. Accepted (200 with a task): the hold goes to the task, which is
    the org's, even after recover() released it; refused: the hold goes; a record of a hold
    already assigned, or of a create that held nothing, changes nothing."""
    from control.api.usage import store_usage
    from proxy.core.seedance.routes import CREATE

    def create_record(request_id: str, status: int, task_id: str | None) -> dict[str, Any]:
        return {
            "request_id": request_id,
            "ts": env_now[0],
            "org_id": ORG,
            "key_id": KEY,
            "method": "POST",
            "route": CREATE.template,
            "status": status,
            "latency_ms": 5.0,
            "upstream_latency_ms": 4.0,
            "bytes_in": 10,
            "bytes_out": 10,
            "credits": 1_000_000,
            "model": MODEL,
            "task_id": task_id,
            "limited_by": None,
        }

    env_now = [T0]

    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 10_000_000, "top-up", "admin")
        for request_id in ("req-ok", "req-late", "req-fast"):
            assert await env.reserve(request_id, 1_000_000) is None
        await env.wallet.assign("req-fast", "cgt-fast")  # the edge's own call got through
        env.clock.now += HOLD_SECONDS + 1
        assert await env.wallet.recover() == 2  # req-ok and req-late, not yet assigned
        assert await env.reserve("req-refused", 1_000_000) is None  # fresh: not recovered
        env_now[0] = env.clock.now
        records = [
            create_record("req-ok", 200, "cgt-ok"),
            create_record("req-late", 200, "cgt-late"),
            create_record("req-refused", 503, None),
            create_record("req-fast", 200, "cgt-fast"),
            create_record("req-never-held", 402, None),
        ]
        await store_usage(env.state, records)
        await store_usage(env.state, records)  # a replayed batch: nothing more
        owners = {t: await env.wallet.owner(t) for t in ("cgt-ok", "cgt-late", "cgt-fast")}
        assert owners == dict.fromkeys(("cgt-ok", "cgt-late", "cgt-fast"), ORG)
        assert sorted(await env.wallet.unsettled_tasks()) == ["cgt-fast", "cgt-late", "cgt-ok"]
        assert await env.wallet.balance(ORG) == {"available": 7_000_000, "reserved": 3_000_000}
        statuses = await env.rows("SELECT id, status FROM reservations ORDER BY id")
        assert {row["id"]: row["status"] for row in statuses} == {
            "req-fast": "held",
            "req-late": "held",
            "req-ok": "held",
            "req-refused": "released",
        }
        assert await env.wallet.settle("cgt-ok", "succeeded", 800_000) == 800_000
        assert await env.wallet.settle("cgt-ok", "succeeded", 800_000) is None  # once

    run(body)


def test_a_large_batch_is_stored_whole_its_outcomes_in_chunks_a_hold_waits_behind_one_only(
    run: Runner,
) -> None:
    """A batch of more creates than a transaction of hold outcomes takes (an edge draining its
    spool) is stored whole, its creates' holds assigned in whichever chunk they fall, and a
    hold asked meanwhile gets the main file's write lock after one chunk, not after the batch
    (the records themselves go to the request log's file: tests/unit/control/
    test_request_log_file.py)."""
    import contextlib

    from control.api import usage as usage_api
    from proxy.core.seedance.routes import CREATE

    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 10_000_000, "top-up", "admin")
        creates = [f"req-{n}" for n in range(250)]  # every one held: outcomes of 3 chunks
        for request_id in creates:
            assert await env.reserve(request_id, 10_000) is None

        def record(n: int) -> dict[str, Any]:  # every one a create
            return {
                "request_id": f"req-{n}",
                "ts": T0,
                "org_id": ORG,
                "key_id": KEY,
                "method": "POST",
                "route": CREATE.template,
                "status": 200,
                "latency_ms": 5.0,
                "upstream_latency_ms": 4.0,
                "bytes_in": 10,
                "bytes_out": 10,
                "credits": 0,
                "model": MODEL,
                "task_id": f"cgt-{n}",
                "limited_by": None,
            }

        records = [record(n) for n in range(len(creates))]
        assert usage_api.CHUNK < len(records) // 2  # a batch of several transactions
        entered: list[str] = []
        first_chunk = asyncio.Event()
        real = env.state.transaction

        @contextlib.asynccontextmanager
        async def watched(who: str):  # type: ignore[no-untyped-def]
            async with real() as tx:
                entered.append(who)
                if who == "ingest":
                    first_chunk.set()
                yield tx

        task = asyncio.current_task()
        assert task is not None

        def transaction():  # type: ignore[no-untyped-def]
            return watched("hold" if asyncio.current_task() is task else "ingest")

        env.state.transaction = transaction  # type: ignore[method-assign]
        ingest = asyncio.create_task(usage_api.store_usage(env.state, records))
        await first_chunk.wait()
        assert await env.reserve("req-meanwhile", 100_000) is None
        await ingest
        env.state.transaction = real  # type: ignore[method-assign]
        chunks = -(-len(records) // usage_api.CHUNK)
        assert entered.count("ingest") == chunks
        assert entered.index("hold") < chunks  # between chunks, not after the whole batch
        stored = [dict(r) for r in await env.state.log.fetch_all("SELECT COUNT(*) AS n FROM usage")]
        assert stored == [{"n": len(records)}]
        owners = {await env.wallet.owner(f"cgt-{r.split('-')[1]}") for r in creates}
        assert owners == {ORG}

    run(body)


def test_the_hold_sweeper_releases_stale_holds_while_running(run: Runner) -> None:
    """Not only at start: a hold whose create never answered is released by the running sweeper
    once it is older than HOLD_SECONDS; a fresh one and an assigned one stay."""
    from control.jobs.holds import HoldSweeper

    async def body(env: Env) -> None:
        await env.wallet.grant(ORG, 10_000_000, "top-up", "admin")
        assert await env.reserve("req-orphan", 1_000_000) is None
        await env.task("req-task", "cgt-1", 1_000_000)
        sweeper = HoldSweeper(env.wallet, interval=0.01)

        async def sweeps(count: int) -> None:
            for _ in range(count):  # a sweep in progress may have read the clock before
                sweeper.swept.clear()
                await sweeper.swept.wait()

        sweeper.start()
        try:
            await sweeps(2)  # nothing is stale yet
            assert await env.wallet.balance(ORG) == {"available": 8_000_000, "reserved": 2_000_000}
            env.clock.now += HOLD_SECONDS + 1
            assert await env.reserve("req-fresh", 1_000_000) is None
            await sweeps(2)
        finally:
            await sweeper.stop()
        assert sweeper.released == 1
        statuses = await env.rows("SELECT id, status FROM reservations ORDER BY id")
        assert {row["id"]: row["status"] for row in statuses} == {
            "req-fresh": "held",
            "req-orphan": "released",
            "req-task": "held",
        }

    run(body)
