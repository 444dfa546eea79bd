"""The control plane's state over PostgreSQL: opened by URL (migrated, the catalog seeded), a
policy snapshot published, credits granted and read back through the ledger's trigger (the
balance is ledger_totals' row, not a sum), a changed ledger entry refused, closed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from control.store.postgres import PostgresDatabase
from control.store.state import ControlState
from control.store.wallet import DatabaseWallet


def test_the_state_publishes_and_keeps_the_ledger_on_postgresql(
    tmp_path: Path, pg_url: str
) -> None:
    async def main() -> None:
        state = await ControlState.open(tmp_path, database_url=pg_url)
        try:
            assert isinstance(state.db, PostgresDatabase)
            before = state.snapshot["version"]
            await state.db.execute(
                "INSERT INTO orgs (id, name, email, created_at, updated_at) "
                "VALUES ('org_pg', 'Acme', 'ops@acme.example', 1, 1)"
            )
            await state.publish()
            assert state.snapshot["version"] == before + 1
            assert [org["id"] for org in state.snapshot["orgs"]] == ["org_pg"]
            assert state.catalog.families  # seeded from config/models.toml
            wallet = DatabaseWallet(state)
            await wallet.grant("org_pg", 5_000_000, "welcome", "admin:test")
            await wallet.grant("org_pg", 1_000_000, "more", "admin:test")
            assert await wallet.balance("org_pg") == {"available": 6_000_000, "reserved": 0}
            with pytest.raises(psycopg.errors.RaiseException, match="never changed"):
                await state.db.execute("UPDATE ledger SET amount = 1 WHERE org_id = 'org_pg'")
        finally:
            await state.close()

    asyncio.run(main())
    with psycopg.connect(pg_url) as check:
        totals = check.execute("SELECT org_id, total FROM ledger_totals").fetchall()
    assert totals == [("org_pg", 6_000_000)]
    assert not (tmp_path / "nextapi.sqlite3").exists()  # the data dir holds no database
