"""The schema's changes as numbered files: read in their numbers' order, a gap, a doubled number
or a misnamed file refused before any database is touched, each file saying why at its top; a
database written by a newer release refused."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from control.store import db as dbm
from control.store import migrations


def test_the_shipped_files_are_numbered_one_to_the_newest_each_with_its_why_on_top() -> None:
    known = migrations.load()
    assert [m.number for m in known] == list(range(1, len(known) + 1))
    assert len(known) >= 15  # the 15 of db.py's list when they moved, and any since
    for migration in known:
        assert migration.file_name.startswith(f"{migration.number:04d}_")
        assert migration.sql.startswith("-- "), f"{migration.file_name} has no comment on top"
    # The newest when the list moved: upstream_orphans and orphan_scan, at version 15.
    assert "CREATE TABLE orphan_scan" in known[14].sql


def test_files_are_ordered_by_number_not_as_listed() -> None:
    texts = {"0002_b.sql": "-- b", "0010_j.sql": "-- j", "0001_a.sql": "-- a"}
    texts |= {f"{n:04d}_x{n}.sql": f"-- {n}" for n in range(3, 10)}
    known = migrations.ordered(texts)
    assert [m.number for m in known] == list(range(1, 11))
    assert [m.file_name for m in known[:2]] == ["0001_a.sql", "0002_b.sql"]
    assert known[9].sql == "-- j"


def test_a_gap_in_the_numbers_is_refused() -> None:
    with pytest.raises(RuntimeError, match=r"skip number 2 \(the next file is 0003_c\.sql\)"):
        migrations.ordered({"0001_a.sql": "", "0003_c.sql": ""})


def test_numbers_start_at_one() -> None:
    with pytest.raises(RuntimeError, match="skip number 1"):
        migrations.ordered({"0002_b.sql": ""})


def test_two_files_with_one_number_are_refused() -> None:
    with pytest.raises(RuntimeError, match=r"0002_b\.sql and 0002_c\.sql have one number, 2"):
        migrations.ordered({"0001_a.sql": "", "0002_b.sql": "", "0002_c.sql": ""})


@pytest.mark.parametrize("file_name", ["2_b.sql", "0002-b.sql", "0002_B.sql", "00002_b.sql"])
def test_a_misnamed_sql_file_is_refused_not_skipped(file_name: str) -> None:
    named = f"{re.escape(file_name)} is not named NNNN_what_it_does"
    with pytest.raises(RuntimeError, match=named):
        migrations.ordered({"0001_a.sql": "", file_name: ""})


def test_a_database_written_by_a_newer_release_is_refused_and_left_as_it_is(
    tmp_path: Path,
) -> None:
    """Today's files end at version N; a database at N+1 has a change this release cannot know
    of, so the control plane stops with a sentence rather than write to it unmigrated."""
    path = tmp_path / "nextapi.sqlite3"
    newest = len(migrations.load())

    async def main() -> None:
        await (await dbm.connect(path)).close()
        with closing(sqlite3.connect(path, isolation_level=None)) as newer:
            newer.execute(f"PRAGMA user_version={newest + 1}")
            newer.execute("CREATE TABLE from_the_future (id INTEGER)")
        with pytest.raises(RuntimeError) as refused:
            await dbm.connect(path)
        assert str(refused.value).startswith(f"{path}: The database is at schema version ")
        assert f"version {newest + 1}, past this release's newest migration ({newest}, " in str(
            refused.value
        )
        assert "written by a newer release" in str(refused.value)

    asyncio.run(main())
    with closing(sqlite3.connect(path)) as after:
        assert after.execute("PRAGMA user_version").fetchone() == (newest + 1,)
        tables = {row[0] for row in after.execute("SELECT name FROM sqlite_master")}
        assert "from_the_future" in tables


def test_a_release_knowing_fewer_migrations_refuses_a_database_past_them(tmp_path: Path) -> None:
    async def main() -> None:
        db = await dbm.connect(tmp_path / "nextapi.sqlite3")
        try:
            known = migrations.load()
            await dbm.migrate(db.connection, known)  # at the newest: nothing to do or refuse
            with pytest.raises(RuntimeError, match="written by a newer release"):
                await dbm.migrate(db.connection, known[:-1])
        finally:
            await db.close()

    asyncio.run(main())
