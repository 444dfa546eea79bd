"""The usage rollups' own SQLite file (`usage_rollups.sqlite3`, control/aggregates/rollup.py
folds into it): opened, checked against this release and migrated, and read with the files it
joins (the main file's tasks, the request log) attached read only. On PostgreSQL the rollups are
tables of the one database and nothing here is used."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiosqlite

from control.store import requestlog, sqlite
from control.store.database import Queries
from control.store.db import MAIN_FILE, NewerSchema, refuse_newer, schema_version
from control.store.sqlite import SqliteDatabase, SqliteQueries

FILE = "usage_rollups.sqlite3"

# The rollup file's writer: each fold durable once committed, a reader waited for (not failed),
# and a page cache for the fold's upserts.
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA busy_timeout=5000",
    "PRAGMA cache_size=-65536",
)


def rollup_path(data_dir: Path) -> Path:
    return data_dir.absolute() / FILE  # attached by a file: URI: absolute only


async def attach(db: aiosqlite.Connection, path: Path, name: str, *, readonly: bool) -> None:
    uri = path.as_uri() + ("?mode=ro" if readonly else "")
    await db.execute(f"ATTACH DATABASE ? AS {name}", (uri,))


async def attach_sources(db: aiosqlite.Connection, data_dir: Path) -> None:
    """What a fold and a read join the rollups with, read only: the main file as `src` (the
    tasks), the request log's as `log` (`data_dir` absolute: they are attached by URI)."""
    await attach(db, data_dir / MAIN_FILE, "src", readonly=True)
    await attach(db, requestlog.log_path(data_dir), "log", readonly=True)


async def open_rollups(data_dir: Path, migrations: Sequence[str]) -> SqliteDatabase:
    """The rollup file, its sources attached, migrated to `migrations` (its user_version counts
    them); one this release must not touch (a newer one's) is refused before any pragma."""
    path = rollup_path(data_dir)
    db = await sqlite.open_connection(path)
    try:
        try:
            refuse_newer(await schema_version(db), len(migrations))
        except NewerSchema as refused:
            raise NewerSchema(f"{path}: {refused}") from None
        for pragma in PRAGMAS:
            await db.execute(pragma)
        await attach_sources(db, data_dir)
        version = await schema_version(db)
        for number, script in enumerate(migrations[version:], start=version + 1):
            await db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version={number};\nCOMMIT;")
    except BaseException:
        await db.close()
        raise
    return SqliteDatabase(db, path)


@contextlib.asynccontextmanager
async def snapshot(data_dir: Path) -> AsyncIterator[Queries]:
    """One read transaction on the rollups, the request log and the tasks together: a read-only
    connection of its own, the others attached as the fold has them."""
    reader = await sqlite.open_connection(rollup_path(data_dir), readonly=True)
    try:
        await reader.execute("PRAGMA busy_timeout=5000")
        await attach_sources(reader, data_dir)
        await reader.execute("BEGIN")
        yield SqliteQueries(reader)
    finally:
        await reader.close()
