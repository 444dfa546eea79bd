"""The store seam (control/store/database.py) says the same on SQLite and on PostgreSQL: one SQL
text with `?` placeholders, rows by name and by position, rowcount, RETURNING, transactions that
commit or roll back, pages of a long read, and a reader's snapshot."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from control.store import db as dbm
from control.store.database import Database

THINGS = "CREATE TABLE things (id bigint PRIMARY KEY, name text NOT NULL, n bigint)"


def run(target: str | Path, body: Callable[[Database], Awaitable[None]]) -> None:
    async def main() -> None:
        db = await dbm.open_database(target)
        try:
            await db.execute(THINGS)
            await body(db)
        finally:
            await db.close()

    asyncio.run(main())


def test_execute_counts_rows_and_rows_answer_by_name_and_position(target: str | Path) -> None:
    async def body(db: Database) -> None:
        await db.executemany(
            "INSERT INTO things (id, name, n) VALUES (?, ?, ?)",
            [(1, "one", 10), (2, "two", 20), (3, "three", None)],
        )
        changed = await db.execute("UPDATE things SET n = n + ? WHERE n IS NOT NULL", (1,))
        assert changed.rowcount == 2
        row = await db.fetch_one("SELECT id, name AS Label, n FROM things WHERE id = ?", 2)
        assert row is not None
        assert (row[0], row[1], row[2]) == (2, "two", 21)
        assert (row["id"], row["Label"], row["label"], row["n"]) == (2, "two", "two", 21)
        # PostgreSQL folds an unquoted alias to lower case; a lookup by name ignores case on both.
        assert [key.lower() for key in row.keys()] == ["id", "label", "n"]
        assert dict(zip(row.keys(), tuple(row), strict=True))["n"] == 21
        assert await db.fetch_one("SELECT id FROM things WHERE id = ?", 99) is None
        every = await db.fetch_all("SELECT id, name FROM things ORDER BY id")
        assert [(r["id"], r[1]) for r in every] == [(1, "one"), (2, "two"), (3, "three")]

    run(target, body)


def test_returning_and_values_as_sqlite_stores_them(target: str | Path) -> None:
    """A bool is an integer and a SUM of integers an int (psycopg would say True and Decimal)."""

    async def body(db: Database) -> None:
        row = await db.fetch_one(
            "INSERT INTO things (id, name, n) VALUES (?, ?, ?) RETURNING id, n", 7, "seven", True
        )
        assert row is not None and (row["id"], row["n"]) == (7, 1)
        await db.execute("INSERT INTO things (id, name, n) VALUES (8, 'eight', 41)")
        total = await db.fetch_one("SELECT SUM(n) AS total, COUNT(*) AS count FROM things")
        assert total is not None
        assert (total["total"], total["count"]) == (42, 2)
        assert type(total["total"]) is int

    run(target, body)


def test_a_question_mark_in_a_literal_and_a_percent_sign_are_sql_not_placeholders(
    target: str | Path,
) -> None:
    async def body(db: Database) -> None:
        await db.execute(
            "INSERT INTO things (id, name, n) VALUES (?, 'why? 100% sure', 7 % ?)", (1, 4)
        )
        row = await db.fetch_one(
            "SELECT name, n, 'it''s ?' AS quoted FROM things WHERE name LIKE '%?%' AND id = ?", 1
        )
        assert row is not None
        assert (row["name"], row["n"], row["quoted"]) == ("why? 100% sure", 3, "it's ?")

    run(target, body)


def test_a_transaction_commits_on_success_and_rolls_back_on_an_error(target: str | Path) -> None:
    async def body(db: Database) -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO things (id, name) VALUES (?, ?)", (1, "kept"))
            inside = await tx.fetch_one("SELECT name FROM things WHERE id = ?", 1)
            assert inside is not None and inside["name"] == "kept"
        with pytest.raises(ZeroDivisionError):
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO things (id, name) VALUES (?, ?)", (2, "lost"))
                await tx.execute("UPDATE things SET name = 'changed' WHERE id = 1")
                raise ZeroDivisionError
        rows = await db.fetch_all("SELECT id, name FROM things ORDER BY id")
        assert [tuple(r) for r in rows] == [(1, "kept")]

    run(target, body)


def test_pages_read_a_long_result_a_few_rows_at_a_time(target: str | Path) -> None:
    async def body(db: Database) -> None:
        await db.executemany(
            "INSERT INTO things (id, name) VALUES (?, ?)", [(i, f"n{i}") for i in range(1, 8)]
        )
        sizes, names = [], []
        sql = "SELECT name FROM things WHERE id > ? ORDER BY id"
        async with contextlib.aclosing(db.pages(3, sql, 1)) as pages:
            async for page in pages:
                sizes.append(len(page))
                names += [row["name"] for row in page]
        assert sizes == [3, 3]
        assert names == [f"n{i}" for i in range(2, 8)]
        async with db.transaction() as tx:  # inside a transaction too
            async with contextlib.aclosing(tx.pages(4, sql, 0)) as pages:
                assert [len(page) async for page in pages] == [4, 3]

    run(target, body)


def test_a_reader_keeps_its_snapshot_while_a_later_commit_lands(target: str | Path) -> None:
    async def body(db: Database) -> None:
        await db.execute("INSERT INTO things (id, name) VALUES (1, 'before')")
        async with db.reader() as reader:
            first = await reader.fetch_all("SELECT name FROM things ORDER BY id")
            await db.execute("INSERT INTO things (id, name) VALUES (2, 'after')")
            again = await reader.fetch_all("SELECT name FROM things ORDER BY id")
        assert [r["name"] for r in first] == [r["name"] for r in again] == ["before"]
        later = await db.fetch_all("SELECT name FROM things ORDER BY id")
        assert [r["name"] for r in later] == ["before", "after"]

    run(target, body)
