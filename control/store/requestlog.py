"""The request log's own database file: the usage records and security events the edges ship,
beside the control plane's main file (`nextapi.sqlite3`) but apart from it, with a connection
and a write lock of their own. Ingest writes hundreds of records a second in big batches; the
main file's writer is the one credit holds go through, so a hold never waits behind a batch
of log inserts (issue 25).

Why the events go too: they arrive in the same batches as the records (a flood of wrong keys
is nothing but events, and it should not slow anyone's holds), nothing joins them to the money
tables, and they are kept the same way (90 days, then purged).

Why the rollups stay in a file of their own (control/aggregates/rollup.py) rather than share
this one: a fold writes up to 100,000 rows a transaction, which ingest would then wait behind;
it reads the main file anyway (the tasks' tokens); and the rollups are billing records kept
for years, the log 90 days, so losing this file loses 90 days of request detail, never the
billed figures.

A database of the previous release kept both tables in the main file: `move_from_main` copies
them here once (see its doc) and empties them there. The main file's schema keeps the empty
tables until a later release drops them (its migrations are PostgreSQL's too)."""

from __future__ import annotations

from pathlib import Path

from control.store import db as dbm
from control.store import sqlite
from control.store.database import one_value
from control.store.sqlite import SqliteDatabase
from proxy.core import security_events, usage_records

FILE = "usage_log.sqlite3"
MOVE_BATCH = 50_000  # rows a transaction while moving an old log
MOVE_CACHE_KIB = 256 * 1024  # the page cache while moving (then SQLite's default again)

# The request log's indexes (the filters of GET …/requests, abuse's count, retention's cutoff).
USAGE_INDEXES = (
    ("usage_key_status_ts", "key_id, status, ts"),
    ("usage_org_key_ts", "org_id, key_id, ts DESC, request_id DESC"),
    ("usage_org_model_ts", "org_id, model, ts DESC, request_id DESC"),
    ("usage_org_route_ts", "org_id, route, ts DESC, request_id DESC"),
    ("usage_org_status_ts", "org_id, status, ts DESC, request_id DESC"),
    ("usage_org_ts", "org_id, ts DESC, request_id DESC"),
    ("usage_ts", "ts"),
)

# The log file's own migrations (user_version counts them), in the portable SQL. The tables
# and indexes are the main file's as the previous release left them (its migrations 0001,
# 0002, 0008, 0012 and 0014), so rows move over column for column.
MIGRATIONS = [
    """
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
    task_id TEXT,
    limited_by TEXT
);
"""
    + "".join(f"CREATE INDEX {name} ON usage({columns});\n" for name, columns in USAGE_INDEXES)
    + """CREATE TABLE security_events (
    request_id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    client_ip TEXT,
    key_id TEXT,
    org_id TEXT,
    reason TEXT NOT NULL,
    status INTEGER NOT NULL,
    route TEXT
);
CREATE INDEX security_events_ip ON security_events(client_ip, ts);
CREATE INDEX security_events_key ON security_events(key_id, ts);
CREATE INDEX security_events_org ON security_events(org_id, ts);
CREATE INDEX security_events_ts ON security_events(ts);
""",
]

# The tables that moved, and their columns.
TABLES = {"usage": usage_records.FIELDS, "security_events": security_events.FIELDS}


def log_path(data_dir: Path) -> Path:
    return data_dir.absolute() / FILE


async def connect(path: Path) -> SqliteDatabase:
    """The request log's file at `path`, created and migrated as needed; one this release must
    not touch (a newer one's) is refused before anything is written to it."""
    connection = await sqlite.open_connection(path)
    try:
        dbm.refuse_newer(await dbm.schema_version(connection), len(MIGRATIONS))
        await sqlite.configure(connection)
        version = await dbm.schema_version(connection)
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            await connection.executescript(
                f"BEGIN;\n{script}\nPRAGMA user_version={number};\nCOMMIT;"
            )
    except BaseException as failed:
        await connection.close()
        if isinstance(failed, dbm.NewerSchema):
            raise dbm.NewerSchema(f"{path}: {failed}") from None
        raise
    return SqliteDatabase(connection, path)


async def move_from_main(log: SqliteDatabase, main: SqliteDatabase) -> dict[str, int]:
    """Moves the request log a previous release kept in the main file into `log`: copied in
    batches of `MOVE_BATCH` (each a transaction of the log's), then the main file's tables
    emptied (a transaction of its own). Returns the rows copied, by table.

    Crash-safe and idempotent, without a flag: a row is deleted from the main file only once
    every row is committed here, and copying again is harmless (`ON CONFLICT DO NOTHING` on
    the request id), so a start cut short anywhere is finished by the next one; once moved,
    it is two reads of empty tables. Usage rows keep their rowids: the rollups' watermark
    (control/aggregates/rollup.py) counts in them, so what was folded stays folded and what
    was not is folded once. Runs before the control plane serves: nothing writes either
    table meanwhile.

    The usage indexes are made after the rows are in (sorting once is three times faster
    than keeping seven indexes row by row): dropped while the log is still empty, made
    again (if missing) before the main file's rows go, so a move cut short before then has
    them made by the next start's."""
    assert main.path is not None and log.path is not None
    copied = dict.fromkeys(TABLES, 0)
    if not any([await one_value(main, f"SELECT 1 FROM {t} LIMIT 1") for t in TABLES]):
        return copied
    await log.connection.execute("ATTACH DATABASE ? AS old", (f"{main.path.as_uri()}?mode=ro",))
    await log.execute(f"PRAGMA cache_size=-{MOVE_CACHE_KIB}")
    try:
        if await one_value(log, "SELECT 1 FROM usage LIMIT 1") is None:
            async with log.transaction() as tx:
                for name, _ in USAGE_INDEXES:
                    await tx.execute(f"DROP INDEX IF EXISTS {name}")
        for table, fields in TABLES.items():
            copied[table] = await _copy(log, table, fields)
        async with log.transaction() as tx:
            for name, columns in USAGE_INDEXES:
                await tx.execute(f"CREATE INDEX IF NOT EXISTS {name} ON usage({columns})")
    finally:
        await log.execute("PRAGMA cache_size=-2000")
        await log.connection.execute("DETACH DATABASE old")
    async with main.transaction() as tx:
        for table in TABLES:  # no WHERE: SQLite's truncation, not a row at a time
            await tx.execute(f"DELETE FROM {table}")
    return copied


async def _copy(log: SqliteDatabase, table: str, fields: tuple[str, ...]) -> int:
    """Every row of `old.table` into `table`, rowid order, a batch a transaction."""
    columns = ", ".join(fields)
    # `WHERE` before `ON CONFLICT`: else SQLite would read the ON as a join's.
    insert = (
        f"INSERT INTO {table} (rowid, {columns}) SELECT rowid, {columns} FROM old.{table} "
        "WHERE rowid > ? AND rowid <= ? ON CONFLICT DO NOTHING"
    )
    copied, after = 0, 0
    while True:
        high = await one_value(
            log,
            f"SELECT MAX(rowid) FROM (SELECT rowid FROM old.{table} WHERE rowid > ? "
            "ORDER BY rowid LIMIT ?)",
            after,
            MOVE_BATCH,
        )
        if high is None:
            return copied
        async with log.transaction() as tx:
            copied += (await tx.execute(insert, (after, high))).rowcount
        after = high
