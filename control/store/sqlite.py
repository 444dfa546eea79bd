"""The embedded backend, the default: one SQLite file in WAL mode and one connection that
writes, a transaction at a time (`BEGIN IMMEDIATE` under a lock, so a read-then-write never
races another writer). Nothing to install."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from control.store.database import SQLITE, Dialect, Queries, Result, Row

# Each change is durable once committed (FULL), and a second connection (a reader, a rollup
# fold) waits out the writer's commit rather than failing at once.
_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
)


class SqliteQueries:
    """Statements on one aiosqlite connection."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self.connection = connection

    @property
    def dialect(self) -> Dialect:
        return SQLITE

    async def execute(self, sql: str, args: Sequence[Any] = (), /) -> Result:
        async with self.connection.execute(sql, args) as cursor:
            return _Changed(cursor.rowcount)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> None:
        await self.connection.executemany(sql, rows)

    async def insert_new(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], /
    ) -> None:
        if not rows:
            return
        names = ", ".join(map(quoted, columns))
        marks = ", ".join("?" for _ in columns)
        await self.connection.executemany(
            f"INSERT INTO {quoted(table)} ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING", rows
        )

    async def fetch_one(self, sql: str, *args: Any) -> Row | None:
        async with self.connection.execute(sql, args) as cursor:
            return await cursor.fetchone()

    async def fetch_all(self, sql: str, *args: Any) -> list[Row]:
        async with self.connection.execute(sql, args) as cursor:
            return list(await cursor.fetchall())

    async def pages(self, size: int, sql: str, *args: Any) -> AsyncGenerator[list[Row]]:
        async with self.connection.execute(sql, args) as cursor:
            while found := await cursor.fetchmany(size):
                yield list(found)

    async def notify(self, channel: str, payload: str) -> None:
        return None  # one process writes this file: there is nobody else to tell


def quoted(name: str) -> str:
    """An identifier as SQL: in double quotes, any inside doubled."""
    return '"' + name.replace('"', '""') + '"'


class _Changed:
    __slots__ = ("rowcount",)

    def __init__(self, rowcount: int) -> None:
        self.rowcount = rowcount


class SqliteDatabase(SqliteQueries):
    """The control plane's database file (see control/store/db.py for its migrations)."""

    def __init__(self, connection: aiosqlite.Connection, path: Path | None) -> None:
        super().__init__(connection)
        # Absolute, so that a reader opens it by URI.
        self.path = None if path is None else Path(os.path.abspath(path))
        self._write_lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Queries]:
        async with self._write_lock:
            await self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                await self.connection.execute("ROLLBACK")
                raise
            await self.connection.execute("COMMIT")

    @contextlib.asynccontextmanager
    async def reader(self) -> AsyncIterator[Queries]:
        """A read-only connection of its own in one read transaction: WAL lets it read a
        consistent snapshot while the writer goes on, and a read held open for minutes never
        holds up a write. A database in memory has no file to open twice: it reads itself."""
        if self.path is None:
            yield self
            return
        connection = await open_connection(self.path, readonly=True)
        try:
            await connection.execute("PRAGMA busy_timeout=5000")
            await connection.execute("BEGIN")
            yield SqliteQueries(connection)
        finally:
            await connection.close()

    async def listen(self, channel: str, callback: Callable[[str], None]) -> None:
        return None  # nobody else writes this file, so nobody notifies

    async def lead(self, job: str) -> bool:
        return True  # the only control plane on this file runs every job

    async def close(self) -> None:
        await self.connection.close()


async def open_connection(path: Path, *, readonly: bool = False) -> aiosqlite.Connection:
    """A connection in autocommit mode (transactions are begun explicitly) with rows by name;
    a reader's `path` is absolute."""
    if readonly:
        connection = await aiosqlite.connect(f"{path.as_uri()}?mode=ro", uri=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = await aiosqlite.connect(path, isolation_level=None)
    connection.row_factory = aiosqlite.Row
    return connection


async def configure(connection: aiosqlite.Connection) -> None:
    """The writer's pragmas; auto_vacuum first, since it only takes on a file with no tables
    yet (retention's purges can then hand pages back)."""
    await connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
    for pragma in _PRAGMAS:
        await connection.execute(pragma)
