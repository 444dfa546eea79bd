"""Retention with an injected clock: each period deletes exactly what it should."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Any

from control.aggregates.rollup import COUNTERS as ROLLUP_COUNTERS
from control.api.usage import store_usage
from control.jobs.retention import DAY, Periods, Retention
from control.store import db as dbm
from control.store import requestlog
from control.store.database import one_value
from control.store.state import ControlState
from control.store.wallet import DatabaseWallet
from tests import postgres

NOW = 1_900_000_000.0  # 2030-03-17


async def insert_org(state: ControlState, org_id: str, closed_at: float | None = None) -> None:
    await state.db.execute(
        "INSERT INTO orgs (id, name, email, status, created_at, updated_at, closed_at) "
        "VALUES (?, ?, ?, ?, 0, 0, ?)",
        (org_id, org_id, f"{org_id}@example.com", "closed" if closed_at else "active", closed_at),
    )


async def usage(state: ControlState, request_id: str, org_id: str | None, ts: float) -> None:
    await state.log.execute(
        "INSERT INTO usage (request_id, ts, org_id, key_id, method, route, status, latency_ms, "
        "bytes_in, bytes_out, credits) VALUES (?, ?, ?, 'k1', 'GET', 'GET /x', 200, 2.0, 10, "
        "20, 5)",
        (request_id, ts, org_id),
    )


async def count(state: ControlState, sql: str, *args: Any) -> int:
    db = state.log if sql.split()[0] in requestlog.TABLES else state.db  # the table's file
    row = await dbm.fetch_one(db, f"SELECT COUNT(*) AS n FROM {sql}", *args)
    return row["n"] if row else 0


def rollup_counters() -> tuple[str, ...]:
    return ROLLUP_COUNTERS


def run(tmp_path: Path, backend: str, body) -> None:
    """`body` on a fresh control plane's state: on SQLite under tmp_path, or on a fresh
    PostgreSQL database (tests/postgres.py)."""

    async def main(database_url: str | None) -> None:
        state = await ControlState.open(tmp_path, database_url=database_url)
        retention = Retention(state, Periods(), clock=lambda: NOW, batch=10)
        try:
            await body(state, retention)
        finally:
            await state.close()

    with contextlib.ExitStack() as stack:
        on_postgres = backend == "postgresql"
        asyncio.run(main(stack.enter_context(postgres.fresh_database()) if on_postgres else None))


def test_api_logs_go_after_90_days_into_the_rollups(tmp_path: Path, backend: str) -> None:
    async def body(state: ControlState, retention: Retention) -> None:
        await insert_org(state, "org_a")
        for i in range(25):  # more than one batch of 10
            await usage(state, f"old-{i}", "org_a", NOW - 91 * DAY)
        await usage(state, "unattributed", None, NOW - 91 * DAY)
        await usage(state, "recent", "org_a", NOW - 89 * DAY)
        dry = await retention.purge(dry_run=True)
        assert dry.counts["usage"] == 26
        assert await count(state, "usage") == 27  # a dry run deletes nothing
        report = await retention.purge()
        assert report.counts["usage"] == 26
        rows = await dbm.fetch_all(state.log, "SELECT request_id FROM usage")
        assert [r["request_id"] for r in rows] == ["recent"]
        old_slot = int(NOW - 91 * DAY) // 900 * 900
        rollups = await retention.folder.open()
        sql = "SELECT * FROM usage_rollup WHERE org_id='org_a' AND slot=?"
        (rollup,) = await rollups.fetch_all(sql, old_slot)
        # requests, ..., credits_charged, ..., bytes_in, bytes_out, latency_count, latency_sum
        counters = dict(zip(rollup_counters(), rollup[-12:], strict=True))
        assert (counters["requests"], counters["credits_charged"]) == (25, 125)
        assert (counters["bytes_in"], counters["bytes_out"]) == (250, 500)
        assert counters["latency_sum"] == 50.0
        sql = "SELECT SUM(requests) FROM usage_rollup_all WHERE slot=?"
        assert await one_value(rollups, sql, old_slot) == 26  # the unattributed one counts
        # Running again changes nothing: the records are gone, the rollup stays.
        assert (await retention.purge()).counts["usage"] == 0
        sql = "SELECT COUNT(*) FROM usage_rollup WHERE slot=?"
        assert await one_value(rollups, sql, old_slot) == 2  # org_a's, and the unattributed one

    run(tmp_path, backend, body)


def test_billing_records_are_kept_seven_years(tmp_path: Path, backend: str) -> None:
    async def body(state: ControlState, retention: Retention) -> None:
        await insert_org(state, "org_a")
        for created, kind in ((NOW - 7 * 366 * DAY, "old"), (NOW - 6 * 365 * DAY, "young")):
            await state.db.execute(
                "INSERT INTO ledger (org_id, kind, amount, reason, created_at) "
                "VALUES ('org_a', 'grant', 1, ?, ?)",
                (kind, created),
            )
        await state.db.execute(
            "INSERT INTO reservations (id, org_id, key_id, amount, model, tier, status, "
            "created_at) VALUES ('held-forever', 'org_a', 'k', 1, 'm', 'default', 'held', 0)"
        )
        balance = await DatabaseWallet(state).balance("org_a")
        assert balance == {"available": 1, "reserved": 1}
        report = await retention.purge()
        assert report.counts["ledger"] == 1 and report.counts["reservations"] == 0
        rows = await dbm.fetch_all(state.db, "SELECT reason FROM ledger")
        assert [r["reason"] for r in rows] == ["young"]
        assert await count(state, "reservations") == 1  # a hold still open is never purged
        # The old grant's credits are still the org's: the purge removes records, not money.
        assert await DatabaseWallet(state).balance("org_a") == balance

    run(tmp_path, backend, body)


def test_closed_account_purged_after_30_days_billing_kept(tmp_path: Path, backend: str) -> None:
    async def body(state: ControlState, retention: Retention) -> None:
        await insert_org(state, "org_recent", closed_at=NOW - 29 * DAY)
        await insert_org(state, "org_gone", closed_at=NOW - 31 * DAY)
        for org_id in ("org_recent", "org_gone"):
            await state.db.execute(
                "INSERT INTO api_keys (id, org_id, name, environment, secret_hash, status, "
                "created_at, updated_at) VALUES (?, ?, 'k', 'live', 'h', 'revoked', 0, 0)",
                (f"key_{org_id}", org_id),
            )
            await state.db.execute(
                "INSERT INTO webhooks (id, org_id, url, secret, created_at, updated_at) "
                "VALUES (?, ?, 'https://example.com/h', 'whsec_x', 0, 0)",
                (f"wh_{org_id}", org_id),
            )
            await state.db.execute(
                "INSERT INTO webhook_events (id, webhook_id, org_id, type, payload, status, "
                "created_at, updated_at) VALUES (?, ?, ?, 'task.succeeded', ?, "
                "'delivered', ?, ?)",
                (f"msg_{org_id}", f"wh_{org_id}", org_id, b"{}", NOW, NOW),
            )
            await state.db.execute(
                "INSERT INTO ledger (org_id, kind, amount, created_at) VALUES (?, 'grant', 5, ?)",
                (org_id, NOW - DAY),
            )
            await usage(state, f"req_{org_id}", org_id, NOW - DAY)
        report = await retention.purge()
        assert report.counts["closed_orgs"] == 1
        assert report.counts["closed_account.api_keys"] == 1
        assert report.counts["closed_account.webhooks"] == 1
        assert await count(state, "api_keys WHERE org_id='org_gone'") == 0
        assert await count(state, "webhooks WHERE org_id='org_gone'") == 0
        assert await count(state, "webhook_events WHERE org_id='org_gone'") == 0
        assert await count(state, "usage WHERE org_id='org_gone'") == 0
        assert await count(state, "ledger WHERE org_id='org_gone'") == 1  # billing stays
        gone = await dbm.fetch_one(state.db, "SELECT name, email FROM orgs WHERE id='org_gone'")
        assert (gone["name"], gone["email"]) == ("(deleted)", "")
        for table in ("api_keys", "webhooks", "usage", "ledger"):
            assert await count(state, f"{table} WHERE org_id='org_recent'") == 1
        audit = await dbm.fetch_all(state.db, "SELECT action, target FROM audit")
        assert [(a["action"], a["target"]) for a in audit] == [("org.purge", "org_gone")]
        # Purged once: the next run finds nothing more to do for it.
        assert (await retention.purge()).counts["closed_orgs"] == 0

    run(tmp_path, backend, body)


def test_purge_command_reports_per_table(tmp_path: Path) -> None:
    async def seed() -> None:
        state = await ControlState.open(tmp_path)
        await insert_org(state, "org_a")
        await usage(state, "ancient", "org_a", 1_000_000.0)
        await usage(state, "newest", "org_a", NOW)  # the newest record is never purged
        ancient_event = {
            "kind": "security",
            "request_id": "req_ancient",
            "ts": 1_000_000.0,
            "client_ip": "203.0.113.7",
            "key_id": None,
            "org_id": None,
            "reason": "unknown_key",
            "status": 401,
            "route": None,
        }
        await store_usage(state, [ancient_event])
        await state.close()

    asyncio.run(seed())
    root = Path(__file__).resolve().parents[3]
    command = [sys.executable, "run_proxy.py", "purge", "--dry-run", "--data-dir", str(tmp_path)]
    dry = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert "would delete usage: 1" in dry.stdout
    assert "would delete security_events: 1" in dry.stdout.splitlines()
    done = subprocess.run(
        command[:3] + command[4:], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert "deleted usage: 1" in done.stdout
    assert "deleted security_events: 1" in done.stdout.splitlines()
    again = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=60)
    assert "would delete usage: 0" in again.stdout


def test_close_with_purge_now_and_correctable_contact_data(tmp_path: Path) -> None:
    import httpx

    from control.app import create_app

    async def main() -> None:
        state = await ControlState.open(tmp_path)
        await state.admin.bootstrap("nat_admin_for_retention_tests")
        app = create_app(state)
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": "Bearer nat_admin_for_retention_tests"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://control", headers=headers
        ) as c:
            org = (
                await c.post(
                    "/v1/orgs", json={"name": "Acme", "email": "a@acme.test", "contact_name": "Ann"}
                )
            ).json()
            assert (org["contact_name"], org["processing_objection"]) == ("Ann", False)
            patched = await c.patch(
                f"/v1/orgs/{org['id']}",
                json={"contact_name": "Ann Lee", "processing_objection": True},
            )
            assert (patched.json()["contact_name"], patched.json()["processing_objection"]) == (
                "Ann Lee",
                True,
            )
            bad = await c.patch(f"/v1/orgs/{org['id']}", json={"processing_objection": "yes"})
            assert bad.status_code == 400
            key = (await c.post(f"/v1/orgs/{org['id']}/keys", json={"name": "k"})).json()
            await c.post(f"/v1/orgs/{org['id']}/credits", json={"amount": 7})
            closed = await c.delete(f"/v1/orgs/{org['id']}", params={"purge": "now"})
            assert closed.status_code == 200
            assert (closed.json()["status"], closed.json()["email"]) == ("closed", "")
            assert closed.json()["contact_name"] is None
            assert (await c.get(f"/v1/keys/{key['id']}")).status_code == 404  # purged
            ledger = (await c.get(f"/v1/orgs/{org['id']}/ledger")).json()["items"]
            assert [e["amount"] for e in ledger] == [7]  # billing records stay
            actions = [e["action"] for e in (await c.get("/v1/audit")).json()["items"]]
            assert actions[:2] == ["org.purge", "org.close"]
        await state.close()

    asyncio.run(main())
