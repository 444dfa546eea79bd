"""Opening the control plane's database and migrating it, and the small helpers every store
module reads and writes with (through the seam, control/store/database.py). The schema's
changes are the numbered files in control/store/migrations/ (and their PostgreSQL twins in its
postgres/); control/store/schema.sql is the schema they build on SQLite."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from control.store import migrations, sqlite
from control.store.database import Database, Queries, Row, one_value
from control.store.migrations import Migration
from control.store.postgres import PostgresDatabase
from control.store.sqlite import SqliteDatabase

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
MAIN_FILE = "nextapi.sqlite3"  # the control plane's SQLite file, in the data directory
# The advisory lock a control plane holds while it migrates a PostgreSQL database: any number
# fixed for this project ("nxtmgr" in ASCII), the same in every release.
MIGRATION_LOCK = 0x6E78746D6772


def is_postgres_url(target: str | Path) -> bool:
    return isinstance(target, str) and target.startswith(POSTGRES_SCHEMES)


async def open_database(target: str | Path) -> Database:
    """The database at `target`, migrated: a `postgresql://…` URL, or else an SQLite file's
    path."""
    if is_postgres_url(target):
        return await connect_postgres(str(target))
    return await connect(Path(target))


async def connect(path: Path) -> SqliteDatabase:
    """The SQLite file at `path`, created and migrated as needed."""
    db = await sqlite.open_connection(path)
    try:
        known = migrations.load()
        # Before the pragmas: a database this release must not touch is left as it was.
        refuse_newer(await schema_version(db), len(known), known[-1].file_name if known else "")
        await sqlite.configure(db)
        await migrate(db, known)
    except RuntimeError as refused:
        await db.close()
        raise type(refused)(f"{path}: {refused}") from refused
    return SqliteDatabase(db, path)


class NewerSchema(RuntimeError):
    """The database was written by a newer release: this one must not touch it."""


async def schema_version(db: aiosqlite.Connection) -> int:
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return row[0] if row else 0


def refuse_newer(version: int, newest: int, newest_name: str = "") -> None:
    """Raises NewerSchema past this release's newest migration: its tables may differ in ways
    this release cannot know of, writing to it could corrupt it, and it would not be migrated
    again."""
    if version > newest:
        named = f", {newest_name}" if newest_name else ""
        raise NewerSchema(
            f"The database is at schema version {version}, past this release's newest "
            f"migration ({newest}{named}): it was written by a newer release. Run that "
            "release, or restore a backup taken before it."
        )


async def migrate(db: aiosqlite.Connection, known: Sequence[Migration] | None = None) -> None:
    """Runs the migrations past the database's user_version, each in its own transaction with
    the version it reaches; `known` is every migration this release has (all the shipped files
    unless a test passes the first few)."""
    known = migrations.load() if known is None else known
    version = await schema_version(db)
    refuse_newer(version, len(known), known[-1].file_name if known else "")
    for migration in known[version:]:
        await db.executescript(
            f"BEGIN;\n{migration.sql}\nPRAGMA user_version={migration.number};\nCOMMIT;"
        )


async def connect_postgres(url: str, known: Sequence[Migration] | None = None) -> PostgresDatabase:
    """The PostgreSQL database at `url`, migrated as needed (`known`: as in `migrate`). Every
    message names the URL without its password."""
    known = migrations.load("postgresql") if known is None else known
    db = await PostgresDatabase.open(url)
    try:
        await migrate_postgres(db, known)
    except RuntimeError as refused:
        await db.close()
        raise type(refused)(f"{db.shown_url}: {refused}") from refused
    except BaseException:
        await db.close()
        raise
    return db


async def migrate_postgres(db: PostgresDatabase, known: Sequence[Migration]) -> None:
    """As `migrate`, under a session advisory lock: a second control plane starting at once
    waits, then finds the version already reached. Each migration commits with its version."""
    async with db.connection() as connection:
        await connection.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (single boolean PRIMARY KEY "
                "DEFAULT true CHECK (single), version integer NOT NULL)"
            )
            await connection.execute(
                "INSERT INTO schema_version (version) VALUES (0) ON CONFLICT DO NOTHING"
            )
            cursor = await connection.execute("SELECT version FROM schema_version")
            row = await cursor.fetchone()
            version = int(row[0]) if row else 0
            refuse_newer(version, len(known), known[-1].file_name if known else "")
            for migration in known[version:]:
                async with connection.transaction():
                    await connection.execute(migration.sql)  # no parameters: several statements
                    await connection.execute(
                        "UPDATE schema_version SET version=%s", (migration.number,)
                    )
        finally:
            await connection.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


async def postgres_schema_version(db: PostgresDatabase) -> int:
    """The version a PostgreSQL database is at (0: never migrated)."""
    row = await db.fetch_one("SELECT to_regclass('schema_version') IS NOT NULL AS known")
    if row is None or not row["known"]:
        return 0
    return int(await one_value(db, "SELECT version FROM schema_version"))


def now() -> float:
    return time.time()


def dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


async def fetch_one(db: Queries, sql: str, *args: Any) -> Row | None:
    return await db.fetch_one(sql, *args)


async def fetch_all(db: Queries, sql: str, *args: Any) -> list[Row]:
    return await db.fetch_all(sql, *args)
