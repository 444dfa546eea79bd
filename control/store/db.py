"""Opening the control plane's database and migrating it, and the small helpers every store
module reads and writes with (through the seam, control/store/database.py). The schema's
changes are the numbered files in control/store/migrations/; control/store/schema.sql is the
schema they build."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from control.store import migrations, sqlite
from control.store.database import Queries, Row
from control.store.migrations import Migration
from control.store.sqlite import SqliteDatabase


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
