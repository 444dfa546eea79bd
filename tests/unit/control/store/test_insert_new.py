"""The seam's `insert_new` (control/store/database.py) on both backends: new rows stored, rows of a
key already there skipped, every kind of value stored as an INSERT stores it, nothing for no
rows, all or nothing with the transaction it is in. On PostgreSQL it goes by COPY through a
staging table (control/store/postgres.py), which the last tests look at."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from control.store import db as dbm
from control.store.database import Database
from control.store.postgres import PostgresDatabase, staging_name

THINGS = "CREATE TABLE things (id text PRIMARY KEY, f double precision, n bigint, s text)"
COLUMNS = ("id", "f", "n", "s")
INSERT = "INSERT INTO things (id, f, n, s) VALUES (?, ?, ?, ?)"

# What a record may hold (an edge's, checked: control/api/usage.py) and more: text COPY must
# escape, floats at their edges, integers as far as a bigint goes.
VALUES: list[tuple[Any, ...]] = [
    ("none", None, None, None),
    ("text", 0.1 + 0.2, 1, "tab\there, newline\nthere, return\r, backslash \\ and \\N, \\t"),
    ("unicode", -0.0, 0, "ünïcødé, 日本語, 😀, \u2028, quotes ' \" and a comma,"),
    ("big", 1e-300, 2**63 - 1, ""),
    ("small", -1.7976931348623157e308, -(2**63), " leading and trailing "),
    ("infinite", float("inf"), -(2**63 - 1), "NULL"),
    ("int as float", 1_900_000_000, 2**53 + 1, "\\."),
    ("huge int as float", 2**63 - 1, True, "\x01\x7f"),
    ("negative infinity", float("-inf"), False, "%s ? $1"),
]


def run(target: str | Path, body: Callable[[Database], Awaitable[None]]) -> None:
    """`body` on a database with the table `things`; on PostgreSQL a pool of one connection, so
    that every transaction is on the same one (and its staging table)."""

    async def main() -> None:
        if dbm.is_postgres_url(target):
            db: Database = await PostgresDatabase.open(str(target), min_size=1, max_size=1)
        else:
            db = await dbm.open_database(target)
        try:
            await db.execute(THINGS)
            await body(db)
        finally:
            await db.close()

    asyncio.run(main())


async def things(db: Database) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in await db.fetch_all("SELECT id, f, n, s FROM things ORDER BY id")]


def test_new_rows_are_stored_and_those_of_a_key_already_there_skipped(target: str | Path) -> None:
    async def body(db: Database) -> None:
        await db.execute(INSERT, ("a", 1.0, 1, "there before"))
        async with db.transaction() as tx:
            await tx.insert_new(
                "things",
                COLUMNS,
                [("a", 2.0, 2, "again"), ("b", 3.0, 3, "new"), ("c", 4.0, 4, "new")],
            )
        # A batch sent twice, and rows repeated within one call: each key once.
        await db.insert_new("things", COLUMNS, [("b", 3.0, 3, "new"), ("d", 5.0, 5, "new")] * 2)
        assert await things(db) == [
            ("a", 1.0, 1, "there before"),
            ("b", 3.0, 3, "new"),
            ("c", 4.0, 4, "new"),
            ("d", 5.0, 5, "new"),
        ]
        # Of rows sharing a key in one call, one is kept (which one is not promised).
        await db.insert_new("things", COLUMNS, [("e", 6.0, 6, "one"), ("e", 7.0, 7, "other")])
        kept = await db.fetch_all("SELECT f, n, s FROM things WHERE id = 'e'")
        assert [tuple(row) for row in kept] in ([(6.0, 6, "one")], [(7.0, 7, "other")])

    run(target, body)


def test_every_kind_of_value_is_stored_as_an_insert_stores_it(target: str | Path) -> None:
    async def body(db: Database) -> None:
        await db.execute(THINGS.replace("things", "inserted"))
        await db.executemany(INSERT.replace("things", "inserted"), VALUES)
        async with db.transaction() as tx:
            await tx.insert_new("things", COLUMNS, VALUES)
        inserted = await db.fetch_all("SELECT id, f, n, s FROM inserted ORDER BY id")
        copied = await things(db)
        # By repr: -0.0 is not 0.0, nor 1.0 1.
        assert [repr(row) for row in copied] == [repr(tuple(row)) for row in inserted]
        # And as they were sent: a bool an integer, an integer in a float column a float (but
        # SQLite's -0.0, which it stores as 0.0).
        sent = {
            id_: (id_, None if f is None else float(f), None if n is None else int(n), s)
            for id_, f, n, s in VALUES
        }
        assert copied == [sent[row[0]] for row in copied]
        assert [[type(v) for v in row] for row in copied] == [
            [type(v) for v in sent[row[0]]] for row in copied
        ]
        assert len(copied) == len(VALUES)

    run(target, body)


def test_no_rows_is_nothing_done(target: str | Path) -> None:
    """Not even a statement: a table that does not exist is never looked for."""

    async def body(db: Database) -> None:
        await db.insert_new("no_such_table", ["id"], [])
        async with db.transaction() as tx:
            await tx.insert_new("no_such_table", ["id"], [])
            await tx.execute(INSERT, ("a", None, None, None))
        assert await things(db) == [("a", None, None, None)]

    run(target, body)


def test_a_rollback_of_the_transaction_leaves_none_of_the_rows(target: str | Path) -> None:
    """Also of the first batch on a connection, whose staging table (on PostgreSQL) the rollback
    takes away again: the next batch makes it anew."""

    async def body(db: Database) -> None:
        for _ in range(2):
            with pytest.raises(ZeroDivisionError):
                async with db.transaction() as tx:
                    await tx.insert_new("things", COLUMNS, [("a", 1.0, 1, "lost")])
                    raise ZeroDivisionError
            assert await things(db) == []
        async with db.transaction() as tx:
            await tx.insert_new("things", COLUMNS, [("b", 2.0, 2, "kept")])
        with pytest.raises(ZeroDivisionError):
            async with db.transaction() as tx:
                await tx.insert_new("things", COLUMNS, [("c", 3.0, 3, "lost")])
                raise ZeroDivisionError
        await db.insert_new("things", COLUMNS, [("d", 4.0, 4, "kept")])
        assert await things(db) == [("b", 2.0, 2, "kept"), ("d", 4.0, 4, "kept")]

    run(target, body)


def test_a_second_call_in_one_transaction_inserts_only_its_own_rows(target: str | Path) -> None:
    """The first call's rows, deleted between the two, stay deleted (PostgreSQL's staging table
    holds none of them by then)."""

    async def body(db: Database) -> None:
        async with db.transaction() as tx:
            await tx.insert_new("things", COLUMNS, [("a", 1.0, 1, "first"), ("b", 2.0, 2, "")])
            await tx.execute("DELETE FROM things WHERE id = ?", ("a",))
            await tx.insert_new("things", COLUMNS, [("c", 3.0, 3, "second")])
            # Another list of columns of the same table.
            await tx.insert_new("things", ("id", "s"), [("d", "fewer columns")])
        assert await things(db) == [
            ("b", 2.0, 2, ""),
            ("c", 3.0, 3, "second"),
            ("d", None, None, "fewer columns"),
        ]

    run(target, body)


def test_a_value_the_table_refuses_fails_the_whole_call(target: str | Path) -> None:
    """A NULL where the table wants a value is no conflict: the call fails, storing none."""

    async def body(db: Database) -> None:
        await db.execute("CREATE TABLE strict (id text PRIMARY KEY, s text NOT NULL)")
        with pytest.raises(Exception, match=r"(?i)null"):
            async with db.transaction() as tx:
                await tx.insert_new("strict", ("id", "s"), [("a", "fine"), ("b", None)])
        assert await db.fetch_all("SELECT id FROM strict") == []

    run(target, body)


def test_postgresql_stages_a_batch_without_a_notice_nor_a_table_per_batch(pg_url: str) -> None:
    """The staging table is made once per connection, without `IF NOT EXISTS` (whose NOTICE
    would come with every batch), and holds no rows between batches."""
    notices: list[str] = []

    async def body(db: Database) -> None:
        assert isinstance(db, PostgresDatabase)
        async with db.pool.connection() as connection:  # the pool's only one
            connection.add_notice_handler(lambda notice: notices.append(notice.message_primary))
            # The handler is called: a notice of the server's reaches it.
            await connection.execute("DROP TABLE IF EXISTS no_such_table")
        assert len(notices) == 1
        notices.clear()
        for batch in range(5):
            async with db.transaction() as tx:
                await tx.insert_new("things", COLUMNS, [(f"r{batch}", 1.0, batch, "x")])
        assert notices == []
        assert len(await things(db)) == 5
        staging = await db.fetch_all(
            "SELECT relname FROM pg_class WHERE relname LIKE 'things%' AND relpersistence = 't'"
        )
        assert [row[0] for row in staging] == [staging_name("things", COLUMNS)]
        async with db.pool.connection() as connection:
            name = staging_name("things", COLUMNS)
            cursor = await connection.execute(f'SELECT count(*) FROM pg_temp."{name}"')
            assert await cursor.fetchone() == (0,)

    run(pg_url, body)


def test_postgresql_inserts_into_a_partitioned_table_with_an_identity(pg_url: str) -> None:
    """The staging table is made of the listed columns' types alone: the table's identity,
    default and keys (here a partitioned one's, its key over the partition's column) are not
    staged."""

    async def body(db: Database) -> None:
        await db.execute(
            "CREATE TABLE days (id text, day bigint, n bigint NOT NULL DEFAULT 7, "
            "rowid bigint GENERATED ALWAYS AS IDENTITY, PRIMARY KEY (id, day)) "
            "PARTITION BY RANGE (day)"
        )
        await db.execute("CREATE TABLE days_1 PARTITION OF days FOR VALUES FROM (1) TO (2)")
        await db.execute("CREATE TABLE days_2 PARTITION OF days FOR VALUES FROM (2) TO (3)")
        await db.insert_new("days", ("id", "day"), [("a", 1), ("a", 2), ("b", 2)])
        await db.insert_new("days", ("id", "day"), [("a", 2), ("c", 1)])
        rows = await db.fetch_all("SELECT id, day, n FROM days ORDER BY rowid")
        assert [tuple(row) for row in rows] == [("a", 1, 7), ("a", 2, 7), ("b", 2, 7), ("c", 1, 7)]
        with pytest.raises(psycopg.errors.CheckViolation):  # no partition for day 3
            await db.insert_new("days", ("id", "day"), [("d", 3)])

    run(pg_url, body)
