"""SQLite schema, migrations and the one connection the control plane writes through (WAL)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import aiosqlite

# Each entry moves the schema one version up; `PRAGMA user_version` records where a file stands.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE orgs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        email TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'active',
        allowed_ips TEXT NOT NULL DEFAULT '[]',
        rate_limit TEXT NOT NULL DEFAULT '{}',
        spend_limit TEXT,
        video_retention_days INTEGER NOT NULL DEFAULT 7,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        closed_at REAL
    );
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL REFERENCES orgs(id),
        name TEXT NOT NULL,
        environment TEXT NOT NULL,
        secret_hash TEXT NOT NULL,
        previous_secret_hash TEXT,
        previous_valid_until REAL,
        status TEXT NOT NULL DEFAULT 'active',
        allowed_ips TEXT NOT NULL DEFAULT '[]',
        models TEXT,
        rate_limit TEXT NOT NULL DEFAULT '{}',
        spend_limit TEXT,
        expires_at REAL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        revoked_at REAL,
        rotated_at REAL
    );
    CREATE INDEX api_keys_org ON api_keys(org_id);
    CREATE TABLE admin_tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        token_hash TEXT NOT NULL,
        scopes TEXT NOT NULL,
        source TEXT NOT NULL,
        created_at REAL NOT NULL,
        revoked_at REAL
    );
    CREATE TABLE usage (
        request_id TEXT PRIMARY KEY,
        ts REAL NOT NULL,
        org_id TEXT,
        key_id TEXT,
        method TEXT NOT NULL,
        route TEXT,
        status INTEGER NOT NULL,
        latency_ms REAL,
        upstream_latency_ms REAL,
        bytes_in INTEGER NOT NULL DEFAULT 0,
        bytes_out INTEGER NOT NULL DEFAULT 0,
        credits INTEGER NOT NULL DEFAULT 0,
        model TEXT,
        task_id TEXT
    );
    CREATE INDEX usage_org_ts ON usage(org_id, ts DESC, request_id DESC);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    """
    CREATE INDEX usage_key_status_ts ON usage(key_id, status, ts);
    """,
    """
    CREATE TABLE ledger (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        org_id TEXT NOT NULL,
        key_id TEXT,
        kind TEXT NOT NULL,
        amount INTEGER NOT NULL,
        task_id TEXT,
        reason TEXT,
        actor TEXT,
        created_at REAL NOT NULL
    );
    CREATE INDEX ledger_org ON ledger(org_id, id);
    CREATE INDEX ledger_key_kind ON ledger(key_id, kind, created_at);
    CREATE UNIQUE INDEX ledger_one_charge ON ledger(task_id) WHERE kind='charge';
    CREATE TABLE reservations (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        key_id TEXT NOT NULL,
        amount INTEGER NOT NULL,
        model TEXT NOT NULL,
        tier TEXT NOT NULL,
        generate_audio INTEGER,
        task_id TEXT UNIQUE,
        status TEXT NOT NULL,
        created_at REAL NOT NULL,
        settled_at REAL
    );
    CREATE INDEX reservations_org_held ON reservations(org_id, status);
    CREATE INDEX reservations_key_held ON reservations(key_id, status, created_at);
    CREATE TABLE tasks (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        key_id TEXT NOT NULL,
        model TEXT,
        service_tier TEXT,
        status TEXT NOT NULL,
        reserved INTEGER NOT NULL DEFAULT 0,
        charged INTEGER,
        tokens INTEGER,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        finished_at REAL
    );
    CREATE INDEX tasks_org ON tasks(org_id, created_at DESC);
    """,
    """
    CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL REFERENCES orgs(id),
        url TEXT NOT NULL,
        events TEXT,
        secret TEXT NOT NULL,
        previous_secret TEXT,
        previous_valid_until REAL,
        status TEXT NOT NULL DEFAULT 'enabled',
        disabled_reason TEXT,
        failing_since REAL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (org_id, url)
    );
    CREATE TABLE webhook_events (
        id TEXT PRIMARY KEY,
        webhook_id TEXT NOT NULL REFERENCES webhooks(id),
        org_id TEXT NOT NULL,
        task_id TEXT,
        type TEXT NOT NULL,
        payload BLOB NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (webhook_id, task_id, type)
    );
    CREATE INDEX webhook_events_due ON webhook_events(status, next_attempt_at);
    CREATE TABLE webhook_attempts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL,
        webhook_id TEXT NOT NULL,
        attempted_at REAL NOT NULL,
        status INTEGER,
        latency_ms REAL,
        error TEXT
    );
    CREATE INDEX webhook_attempts_hook ON webhook_attempts(webhook_id, id DESC);
    ALTER TABLE reservations ADD COLUMN callback_webhook TEXT;
    ALTER TABLE tasks ADD COLUMN callback_webhook TEXT;
    """,
    """
    CREATE TABLE usage_daily (
        org_id TEXT NOT NULL,
        key_id TEXT NOT NULL,
        day TEXT NOT NULL,
        route TEXT NOT NULL,
        status INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        credits INTEGER NOT NULL,
        bytes_in INTEGER NOT NULL,
        bytes_out INTEGER NOT NULL,
        latency_ms_sum REAL NOT NULL,
        PRIMARY KEY (org_id, key_id, day, route, status)
    );
    CREATE INDEX usage_ts ON usage(ts);
    """,
    """
    ALTER TABLE orgs ADD COLUMN contact_name TEXT;
    ALTER TABLE orgs ADD COLUMN processing_objection INTEGER NOT NULL DEFAULT 0;
    """,
    """
    ALTER TABLE tasks ADD COLUMN video_deleted_at REAL;
    CREATE INDEX tasks_finished ON tasks(status, finished_at);
    """,
    # Security events (failed authentications, refused addresses) with the client address, kept
    # 90 days against fraud and abuse. The request id makes a replayed spool change nothing.
    """
    CREATE TABLE security_events (
        request_id TEXT PRIMARY KEY,
        ts REAL NOT NULL,
        client_ip TEXT,
        key_id TEXT,
        org_id TEXT,
        reason TEXT NOT NULL,
        status INTEGER NOT NULL,
        route TEXT
    );
    CREATE INDEX security_events_ts ON security_events(ts);
    CREATE INDEX security_events_ip ON security_events(client_ip, ts);
    CREATE INDEX security_events_org ON security_events(org_id, ts);
    CREATE INDEX security_events_key ON security_events(key_id, ts);
    """,
    # The model catalog (seeded once from config/models.toml); the unit price each hold was
    # made at, so a task is charged at it whatever the catalog says later; Idempotency-Key.
    """
    CREATE TABLE model_families (
        name TEXT PRIMARY KEY,
        spec TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    ALTER TABLE reservations ADD COLUMN unit_price TEXT;
    ALTER TABLE reservations ADD COLUMN resolution TEXT;
    ALTER TABLE reservations ADD COLUMN video_input INTEGER;
    ALTER TABLE tasks ADD COLUMN unit_price TEXT;
    CREATE TABLE idempotency_keys (
        org_id TEXT NOT NULL,
        key TEXT NOT NULL,
        body_hash TEXT NOT NULL,
        request_id TEXT NOT NULL,
        status INTEGER,
        response BLOB,
        created_at REAL NOT NULL,
        PRIMARY KEY (org_id, key)
    );
    CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);
    """,
    """
    ALTER TABLE admin_tokens ADD COLUMN last_used_at REAL;
    """,
    # Dashboard sessions: the SHA-256 of the cookie's random id, never the admin token itself.
    """
    CREATE TABLE ui_sessions (
        id_hash TEXT PRIMARY KEY,
        token_id TEXT NOT NULL REFERENCES admin_tokens(id),
        csrf TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_seen_at REAL NOT NULL
    );
    CREATE INDEX ui_sessions_token ON ui_sessions(token_id);
    """,
    # The request log's filters (key, status, model, route), each read newest first within
    # one org straight off an index: a page of a filtered log over millions of rows is a seek.
    # And an event's attempts, counted for the delivery log.
    """
    CREATE INDEX usage_org_key_ts ON usage(org_id, key_id, ts DESC, request_id DESC);
    CREATE INDEX usage_org_status_ts ON usage(org_id, status, ts DESC, request_id DESC);
    CREATE INDEX usage_org_model_ts ON usage(org_id, model, ts DESC, request_id DESC);
    CREATE INDEX usage_org_route_ts ON usage(org_id, route, ts DESC, request_id DESC);
    CREATE INDEX webhook_attempts_event ON webhook_attempts(event_id);
    """,
    # Each org's balance, kept as the ledger is written (by a trigger, in the same transaction):
    # a hold or a balance read is one row, not a sum over years of charges, and the purge of
    # ledger entries past their retention leaves it as it was. Entries are never changed.
    # Indexes, so that no read of one org sorts or sums all its rows: its (or a key's) charges
    # over a spend limit's window, off the index alone; its newest holds; its newest tasks (ties
    # by id, as the pages read them).
    """
    CREATE TABLE ledger_totals (org_id TEXT PRIMARY KEY, total INTEGER NOT NULL);
    INSERT INTO ledger_totals (org_id, total)
        SELECT org_id, SUM(amount) FROM ledger GROUP BY org_id;
    CREATE TRIGGER ledger_adds_to_total AFTER INSERT ON ledger BEGIN
        INSERT INTO ledger_totals (org_id, total) VALUES (NEW.org_id, NEW.amount)
        ON CONFLICT (org_id) DO UPDATE SET total = total + excluded.total;
    END;
    CREATE TRIGGER ledger_entries_are_final BEFORE UPDATE OF org_id, amount ON ledger BEGIN
        SELECT RAISE(ABORT, 'ledger entries are never changed');
    END;
    CREATE INDEX ledger_org_kind ON ledger(org_id, kind, created_at, amount);
    DROP INDEX ledger_key_kind;
    CREATE INDEX ledger_key_kind ON ledger(key_id, kind, created_at, amount);
    CREATE INDEX reservations_org_created ON reservations(org_id, created_at);
    DROP INDEX tasks_org;
    CREATE INDEX tasks_org ON tasks(org_id, created_at DESC, id DESC);
    """,
    # Which of the customer's own limits refused a request (`key` or `org`; NULL for every
    # other answer, a 429 of the upstream's or of a cap other customers fill included): the
    # abuse rule counts only these.
    """
    ALTER TABLE usage ADD COLUMN limited_by TEXT;
    """,
    # Tasks the upstream made for creates the edge never answered (control/jobs/orphans.py):
    # each once, given to its hold (`charged`) or billed to no one (`unmatched`, `ambiguous`);
    # and how far the scans have listed the upstream. The holds they look for: held, no task.
    """
    CREATE TABLE upstream_orphans (
        task_id TEXT PRIMARY KEY,
        outcome TEXT NOT NULL,
        org_id TEXT,
        reservation_id TEXT,
        model TEXT,
        status TEXT,
        upstream_created_at REAL,
        found_at REAL NOT NULL
    );
    CREATE INDEX upstream_orphans_found ON upstream_orphans(outcome, found_at);
    CREATE INDEX upstream_orphans_org ON upstream_orphans(org_id);
    CREATE TABLE orphan_scan (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        scanned_until REAL,
        checked_at REAL,
        error TEXT
    );
    CREATE INDEX reservations_unassigned ON reservations(created_at)
        WHERE status='held' AND task_id IS NULL;
    """,
]


async def connect(path: Path) -> aiosqlite.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = await aiosqlite.connect(path, isolation_level=None)
    db.row_factory = aiosqlite.Row
    # Before any table exists (a new file): retention's purges can hand pages back to the disk.
    await db.execute("PRAGMA auto_vacuum=INCREMENTAL")
    await db.execute("PRAGMA journal_mode=WAL")
    await db.execute("PRAGMA synchronous=FULL")
    await db.execute("PRAGMA foreign_keys=ON")
    await db.execute("PRAGMA busy_timeout=5000")
    await migrate(db)
    return db


async def migrate(db: aiosqlite.Connection) -> None:
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    version = row[0] if row else 0
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        await db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version={number};\nCOMMIT;")


def now() -> float:
    return time.time()


def dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


async def fetch_one(db: aiosqlite.Connection, sql: str, *args: Any) -> aiosqlite.Row | None:
    async with db.execute(sql, args) as cursor:
        return await cursor.fetchone()


async def fetch_all(db: aiosqlite.Connection, sql: str, *args: Any) -> list[aiosqlite.Row]:
    async with db.execute(sql, args) as cursor:
        return list(await cursor.fetchall())
