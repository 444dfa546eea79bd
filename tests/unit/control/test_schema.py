"""control/store/schema.sql is the schema the migrations build from zero; a database migrated
one version at a time (closed and reopened between) ends with that same schema; and the layout
does not depend on the whitespace a statement was written with."""

from __future__ import annotations

import asyncio
import difflib
from pathlib import Path

import aiosqlite
import pytest

from control.store import db as dbm
from control.store import migrations, schema


def test_schema_sql_is_the_schema_of_a_database_migrated_from_zero() -> None:
    built = asyncio.run(schema.from_zero())
    checked_in = schema.checked_in()
    if built != checked_in:
        diff = "".join(
            difflib.unified_diff(
                checked_in.splitlines(keepends=True),
                built.splitlines(keepends=True),
                "control/store/schema.sql (checked in)",
                "migrated from zero",
            )
        )
        pytest.fail(
            "control/store/schema.sql differs from the schema the migrations build: regenerate "
            f"it with `{schema.REGENERATE}` and commit it.\n{diff}"
        )


def test_migrating_one_version_at_a_time_ends_with_the_schema_of_migrating_from_zero(
    tmp_path: Path,
) -> None:
    known = migrations.load()
    stepped_path = tmp_path / "stepped.sqlite3"

    async def main() -> tuple[str, str]:
        for version in range(1, len(known) + 1):
            # A release that knew only the first `version` migrations, then closed.
            db = await aiosqlite.connect(stepped_path, isolation_level=None)
            try:
                await dbm.migrate(db, known[:version])
                assert await _user_version(db) == version
            finally:
                await db.close()
        stepped = await dbm.connect(stepped_path)  # reopened by this release: nothing left
        from_zero = await dbm.connect(tmp_path / "from_zero.sqlite3")
        try:
            stepped_db, from_zero_db = stepped.connection, from_zero.connection
            assert (
                await _user_version(stepped_db) == await _user_version(from_zero_db) == len(known)
            )
            return await schema.dump(stepped_db), await schema.dump(from_zero_db)
        finally:
            await stepped.close()
            await from_zero.close()

    stepped_schema, from_zero_schema = asyncio.run(main())
    assert "CREATE TABLE upstream_orphans (" in from_zero_schema
    assert stepped_schema == from_zero_schema


def test_the_layout_is_the_same_for_any_whitespace_written() -> None:
    """db.py's list was indented inside Python strings; the files are not; ALTER TABLE appends
    to the stored CREATE as it likes. Databases of either read alike."""
    indented = """
        CREATE TABLE t (
                a TEXT NOT NULL DEFAULT 'two  spaces',   -- why a is
            b INTEGER CHECK (b > 0)
        );
        CREATE   INDEX t_a ON t(a)
            WHERE b=1;
        CREATE TRIGGER t_final BEFORE UPDATE ON t BEGIN
                SELECT RAISE(ABORT, 'final');
        END;
        ALTER TABLE t ADD COLUMN c REAL;
    """
    plain = """
        CREATE TABLE t (a TEXT NOT NULL DEFAULT 'two  spaces', b INTEGER CHECK (b > 0), c REAL);
        CREATE INDEX t_a ON t(a) WHERE b=1;
        CREATE TRIGGER t_final BEFORE UPDATE ON t BEGIN SELECT RAISE(ABORT, 'final'); END;
    """

    async def dumped(script: str) -> str:
        db = await aiosqlite.connect(":memory:", isolation_level=None)
        try:
            await db.executescript(script)
            return await schema.dump(db)
        finally:
            await db.close()

    laid_out = (
        "CREATE TABLE t (\n"
        "    a TEXT NOT NULL DEFAULT 'two  spaces',\n"  # quoted text kept as written
        "    b INTEGER CHECK (b > 0),\n"
        "    c REAL\n"
        ");\n"
        "CREATE INDEX t_a ON t(a) WHERE b=1;\n"
        "CREATE TRIGGER t_final BEFORE UPDATE ON t BEGIN\n"
        "    SELECT RAISE(ABORT, 'final');\n"
        "END;\n"
    )
    assert asyncio.run(dumped(indented)) == laid_out
    assert asyncio.run(dumped(plain)) == laid_out


def test_check_passes_on_the_checked_in_file_and_printing_gives_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert schema.main(["--check"]) == 0
    assert schema.main([]) == 0
    assert capsys.readouterr().out == schema.checked_in()


async def _user_version(db: aiosqlite.Connection) -> int:
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0
