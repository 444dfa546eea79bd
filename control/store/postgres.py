"""The PostgreSQL backend (`--database-url postgresql://…`): a psycopg 3 pool of connections in
autocommit, a statement outside a transaction on any of them, a transaction on one taken for it.
Module SQL is the same text as on SQLite, its rows and values as SQLite's (control/store/
pgadapt.py says how they pass to psycopg). A batch of new rows (`insert_new`) goes by COPY. The
raw pool (`pool`, `connection()`) is there for what the seam does not cover (the migrations,
under their advisory lock)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql as pgsql
from psycopg_pool import AsyncConnectionPool

from control.store.database import POSTGRESQL, Dialect, Queries, Result, Row
from control.store.pgadapt import ADAPTERS, pg_row, placeholders, redact

log = logging.getLogger(__name__)

# The first key of every job's advisory lock (`lead`), its second the hash of the job's name:
# a key space of the project's own ("nxtj" in ASCII), apart from the migration lock's.
JOB_LOCKS = 0x6E78746A

# Connections kept open: the control plane's handlers and jobs share them; a reader or a page
# read holds one for as long as it reads.
POOL_MIN = 1
POOL_MAX = 10
# How long opening waits for the server's first connection before it says so.
CONNECT_TIMEOUT = 10.0


_cursor_names = itertools.count(1)

# The staging tables (`insert_new`) each connection has for good: made by a transaction that
# committed, so no rollback took them away again. Only of the others is the server asked.
_staging_made: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], set[str]] = (
    weakref.WeakKeyDictionary()
)


def staging_name(table: str, columns: Sequence[str]) -> str:
    """The temporary table `insert_new` stages `columns` of `table` in: one per table and list
    of columns (another list, another table), well within PostgreSQL's 63 bytes a name."""
    digest = hashlib.blake2s("\0".join([table, *columns]).encode(), digest_size=5).hexdigest()
    return f"{table[:40]}_new_{digest}"


class _Changed:
    __slots__ = ("rowcount",)

    def __init__(self, rowcount: int) -> None:
        self.rowcount = rowcount


class PostgresQueries:
    """Statements on one connection (inside a transaction, or a reader's snapshot)."""

    def __init__(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self.connection = connection
        # Staging tables this transaction made: gone again, should it roll back.
        self._made: set[str] = set()

    @property
    def dialect(self) -> Dialect:
        return POSTGRESQL

    async def execute(self, sql: str, args: Sequence[Any] = (), /) -> Result:
        cursor = await self.connection.execute(placeholders(sql), tuple(args))
        return _Changed(cursor.rowcount)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> None:
        async with self.connection.cursor() as cursor:
            await cursor.executemany(placeholders(sql), [tuple(row) for row in rows])

    async def insert_new(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], /
    ) -> None:
        """COPY into this connection's staging table, then one `INSERT … SELECT … ON CONFLICT
        DO NOTHING`; within the transaction this connection is in. The staged columns are of
        the table's own types, so COPY's text (psycopg's, with this module's adapters) is read
        as the table reads an INSERT's parameters."""
        if not rows:
            return
        staging = await self._staging(table, columns)
        names = pgsql.SQL(", ").join(map(pgsql.Identifier, columns))
        async with self.connection.cursor() as cursor:
            async with cursor.copy(
                pgsql.SQL("COPY {} ({}) FROM STDIN").format(staging, names)
            ) as copy:
                for row in rows:
                    await copy.write_row(row)
        # The staging table emptied as it is read (not only at commit), so that a second call
        # in this transaction inserts none of the first's rows again (the table may have
        # changed in between).
        await self.connection.execute(
            pgsql.SQL(
                "WITH staged AS (DELETE FROM {staging} RETURNING {names}) "
                "INSERT INTO {table} ({names}) SELECT {names} FROM staged ON CONFLICT DO NOTHING"
            ).format(staging=staging, names=names, table=pgsql.Identifier(table))
        )

    async def _staging(self, table: str, columns: Sequence[str]) -> pgsql.Identifier:
        """The staging table for `columns` of `table`, made if this session has none yet: of
        the table's column types but of nothing else (no key, default or identity: whatever
        the table's are, every row is staged), temporary (this session's alone, kept for the
        next batch) and emptied at each commit."""
        name = staging_name(table, columns)
        staging = pgsql.Identifier("pg_temp", name)
        made = _staging_made.setdefault(self.connection, set())
        if name in made:
            return staging
        # Asked rather than `CREATE … IF NOT EXISTS`, whose NOTICE that the table is there
        # would come with every batch.
        cursor = await self.connection.execute(
            "SELECT to_regclass(%s)", (staging.as_string(self.connection),)
        )
        found = await cursor.fetchone()
        if found is None or found[0] is None:
            await self.connection.execute(
                pgsql.SQL(
                    "CREATE TEMPORARY TABLE {} ON COMMIT DELETE ROWS AS "
                    "SELECT {} FROM {} WITH NO DATA"
                ).format(
                    staging,
                    pgsql.SQL(", ").join(map(pgsql.Identifier, columns)),
                    pgsql.Identifier(table),
                )
            )
            self._made.add(name)
        elif name not in self._made:
            made.add(name)  # made by a transaction before this one, which committed
        return staging

    async def fetch_one(self, sql: str, *args: Any) -> Row | None:
        cursor = await self.connection.execute(placeholders(sql), args)
        if cursor.description is None:  # a statement with no result: none, as on SQLite
            return None
        return await cursor.fetchone()

    async def fetch_all(self, sql: str, *args: Any) -> list[Row]:
        cursor = await self.connection.execute(placeholders(sql), args)
        if cursor.description is None:
            return []
        return list(await cursor.fetchall())

    async def notify(self, channel: str, payload: str) -> None:
        """Delivered when this connection's transaction commits (at once outside one)."""
        await self.connection.execute("SELECT pg_notify(%s, %s)", (channel, payload))

    async def pages(self, size: int, sql: str, *args: Any) -> AsyncGenerator[list[Row]]:
        """A server-side cursor in the transaction this connection is in."""
        async with self.connection.cursor(
            f"nextapi_pages_{next(_cursor_names)}", row_factory=pg_row
        ) as cursor:
            await cursor.execute(placeholders(sql), args)
            while found := await cursor.fetchmany(size):
                yield list(found)


class PostgresDatabase:
    """The control plane's database on a PostgreSQL server (control/store/db.py migrates it)."""

    def __init__(self, pool: AsyncConnectionPool[Any], url: str) -> None:
        self.pool = pool
        self.url = url
        self.shown_url = redact(url)  # never the password: for messages and logs
        self._listening: list[_Listening] = []
        # The connection holding this control plane's job locks (`lead`), and the jobs it holds.
        self._leader: psycopg.AsyncConnection[Any] | None = None
        self._led: set[str] = set()

    @classmethod
    async def open(
        cls, url: str, *, min_size: int = POOL_MIN, max_size: int = POOL_MAX
    ) -> PostgresDatabase:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True, "row_factory": pg_row, "context": ADAPTERS},
            # Each connection asked before it is handed out: after the server restarted, the
            # pool's idle connections are dead, and the first request on each would fail.
            check=AsyncConnectionPool.check_connection,
            open=False,
            name="nextapi-control",
        )
        try:
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        except Exception as failed:
            await pool.close()
            reason = await _why_not(url) or type(failed).__name__
            raise ConnectionError(
                f"PostgreSQL at {redact(url)} could not be reached: {reason}"
            ) from None
        return cls(pool, url)

    @property
    def dialect(self) -> Dialect:
        return POSTGRESQL

    def connection(self) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        """A pooled connection in autocommit, for what the seam does not cover (the
        migrations, under their advisory lock)."""
        return self.pool.connection()

    async def execute(self, sql: str, args: Sequence[Any] = (), /) -> Result:
        async with self.pool.connection() as connection:
            return await PostgresQueries(connection).execute(sql, args)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> None:
        async with self.transaction() as tx:  # all the rows or none
            await tx.executemany(sql, rows)

    async def insert_new(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], /
    ) -> None:
        """In a transaction of its own: the staging table is emptied at every commit, and in
        autocommit each statement is one."""
        if rows:
            async with self.transaction() as tx:
                await tx.insert_new(table, columns, rows)

    async def fetch_one(self, sql: str, *args: Any) -> Row | None:
        async with self.pool.connection() as connection:
            return await PostgresQueries(connection).fetch_one(sql, *args)

    async def fetch_all(self, sql: str, *args: Any) -> list[Row]:
        async with self.pool.connection() as connection:
            return await PostgresQueries(connection).fetch_all(sql, *args)

    async def pages(self, size: int, sql: str, *args: Any) -> AsyncGenerator[list[Row]]:
        """A named cursor needs a transaction: one of its own."""
        async with self.pool.connection() as connection, connection.transaction():
            async with contextlib.aclosing(
                PostgresQueries(connection).pages(size, sql, *args)
            ) as found:
                async for page in found:
                    yield page

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Queries]:
        """One pooled connection for the transaction; READ COMMITTED (the server's default):
        a read-then-write that must not race another writer locks its rows
        (`dialect.for_update`)."""
        async with self.pool.connection() as connection, connection.transaction():
            yield PostgresQueries(connection)

    @contextlib.asynccontextmanager
    async def reader(self) -> AsyncIterator[Queries]:
        """One snapshot for the whole read (REPEATABLE READ), read only: a commit after it began
        is not seen, and it holds up no writer."""
        async with self.pool.connection() as connection:
            await connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield PostgresQueries(connection)
            finally:
                await connection.execute("ROLLBACK")

    async def notify(self, channel: str, payload: str) -> None:
        async with self.pool.connection() as connection:
            await PostgresQueries(connection).notify(channel, payload)

    async def listen(self, channel: str, callback: Callable[[str], None]) -> None:
        """A connection of its own, outside the pool, LISTENing until close. Should it be lost
        (the server restarted), it is opened again, waiting longer each time it fails, and the
        callback is then called with an empty payload: what was notified meanwhile is lost, so
        the listener reads afresh."""
        listening = _Listening(self.url, self.shown_url, channel, callback)
        await listening.connect()  # the first time, a failure is the caller's
        listening.task = asyncio.get_running_loop().create_task(
            listening.run(), name=f"listen {channel}"
        )
        self._listening.append(listening)

    async def lead(self, job: str) -> bool:
        """A session advisory lock per job on a connection of its own, held until close (or
        until that connection is lost, when another control plane may take the job over)."""
        if self._leader is not None and self._leader.closed:
            self._leader, self._led = None, set()
        if self._leader is None:
            self._leader = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        if job in self._led:
            try:  # the lock is only as alive as its connection: asked, it answers or fails
                await self._leader.execute("SELECT 1")
            except psycopg.OperationalError:
                log.warning("lost the job locks with the connection to %s", self.shown_url)
                self._led = set()
                with contextlib.suppress(psycopg.Error):
                    await self._leader.close()
                self._leader = None
                return False
            return True
        cursor = await self._leader.execute(
            "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (JOB_LOCKS, job)
        )
        row = await cursor.fetchone()
        if row is not None and row[0]:
            self._led.add(job)
            return True
        return False

    async def close(self) -> None:
        for listening in self._listening:
            await listening.close()
        self._listening.clear()
        if self._leader is not None:
            # Given back before the connection goes: a server notices a closed connection a
            # moment later, and another control plane asking at once would find them held.
            with contextlib.suppress(psycopg.Error):
                await self._leader.execute("SELECT pg_advisory_unlock_all()")
            await self._leader.close()  # the job locks go with it anyway
            self._leader = None
        await self.pool.close()


async def _why_not(url: str) -> str | None:
    """The server's own words for why a connection fails (no such database, a password
    refused), which the pool's timeout does not say; without any password in them."""
    try:
        probe = await psycopg.AsyncConnection.connect(
            url, connect_timeout=max(1, round(CONNECT_TIMEOUT))
        )
    except psycopg.Error as refused:
        words = " ".join(str(refused).split())
        password = urlsplit(url).password if "://" in url else None
        return words.replace(password, "***") if password else words
    await probe.close()
    return None


class _Listening:
    """One LISTEN connection, opened again whenever it is lost."""

    RETRY_FIRST, RETRY_MOST = 0.5, 30.0  # seconds between attempts to connect again

    def __init__(
        self, url: str, shown_url: str, channel: str, callback: Callable[[str], None]
    ) -> None:
        self.url, self.shown_url, self.channel, self.callback = url, shown_url, channel, callback
        self.connection: psycopg.AsyncConnection | None = None
        self.task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        connection = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        await connection.execute(pgsql.SQL("LISTEN {}").format(pgsql.Identifier(self.channel)))
        self.connection = connection

    async def run(self) -> None:
        wait = self.RETRY_FIRST
        while True:
            assert self.connection is not None
            try:
                async for notice in self.connection.notifies():
                    wait = self.RETRY_FIRST
                    self.callback(notice.payload)
            except psycopg.OperationalError:
                log.error(
                    "lost the connection to %s listening on %s: connecting again",
                    self.shown_url,
                    self.channel,
                )
            with contextlib.suppress(psycopg.Error):
                await self.connection.close()
            while True:
                await asyncio.sleep(wait)
                wait = min(wait * 2, self.RETRY_MOST)
                try:
                    await self.connect()
                    break
                except psycopg.OperationalError:
                    continue
            log.warning("listening on %s again", self.channel)
            self.callback("")  # notices sent meanwhile were missed: read afresh

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.connection is not None:
            await self.connection.close()
