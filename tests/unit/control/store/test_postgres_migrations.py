"""Migrating a PostgreSQL database: two control planes starting at once on a fresh one both
start, and only one migrates (the advisory lock); a database past this release's newest
migration is refused and left as it is, naming its URL without the password; a missing
PostgreSQL twin stops the start before any database is touched; an unreachable server, or a
database that does not exist, is a sentence."""

from __future__ import annotations

import asyncio
import socket

import psycopg
import pytest

from control.store import db as dbm
from control.store import migrations, postgres
from tests.postgres import database_exists


def test_two_control_planes_opening_one_fresh_database_at_once_migrate_it_once(
    pg_url: str,
) -> None:
    newest = len(migrations.load("postgresql"))

    async def main() -> list[int]:
        # A second migration of the same files would fail on its first CREATE TABLE.
        opened = await asyncio.gather(dbm.open_database(pg_url), dbm.open_database(pg_url))
        try:
            return [await dbm.postgres_schema_version(db) for db in opened]  # type: ignore[arg-type]
        finally:
            for db in opened:
                await db.close()

    assert asyncio.run(main()) == [newest, newest]
    with psycopg.connect(pg_url) as check:
        assert check.execute("SELECT count(*) FROM schema_version").fetchone() == (1,)


def test_a_database_written_by_a_newer_release_is_refused_and_left_as_it_is(pg_url: str) -> None:
    newest = len(migrations.load("postgresql"))
    server, _, name = pg_url.rpartition("/")
    scheme, _, host = server.partition("://")
    with_password = f"{scheme}://postgres:s3cret-word@{host.split('@', 1)[1]}/{name}"

    async def main() -> None:
        await (await dbm.open_database(pg_url)).close()
        with psycopg.connect(pg_url, autocommit=True) as newer:
            newer.execute("UPDATE schema_version SET version = %s", (newest + 1,))
            newer.execute("CREATE TABLE from_the_future (id bigint)")
        with pytest.raises(dbm.NewerSchema) as refused:
            await dbm.open_database(with_password)  # trust auth: the password is not checked
        message = str(refused.value)
        assert message.startswith(f"{scheme}://postgres:***@")
        assert "s3cret-word" not in message
        assert f"version {newest + 1}, past this release's newest migration ({newest}, " in message

    asyncio.run(main())
    with psycopg.connect(pg_url) as check:
        assert check.execute("SELECT version FROM schema_version").fetchone() == (newest + 1,)


def test_a_missing_postgresql_twin_stops_the_start_before_the_database_is_touched(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    read = migrations._sql_files

    def without_0013(folder: migrations.Traversable) -> dict[str, str]:
        found = read(folder)
        if folder.name == migrations.POSTGRES_FOLDER:
            found.pop("0013_ledger_totals.sql")
        return found

    monkeypatch.setattr(migrations, "_sql_files", without_0013)
    with pytest.raises(RuntimeError, match=r"0013_ledger_totals\.sql has no PostgreSQL twin"):
        asyncio.run(dbm.open_database(pg_url))
    assert database_exists(pg_url)
    with psycopg.connect(pg_url) as check:
        assert check.execute("SELECT to_regclass('schema_version')").fetchone() == (None,)


def test_twins_match_number_for_number_and_name_for_name() -> None:
    sqlite_files = {"0001_a.sql": "", "0002_b.sql": ""}
    assert migrations.paired(sqlite_files, {"0001_a.sql": "x", "0002_b.sql": "y"})
    with pytest.raises(RuntimeError, match=r"0002_b\.sql has no PostgreSQL twin"):
        migrations.paired(sqlite_files, {"0001_a.sql": ""})
    with pytest.raises(RuntimeError, match=r"postgres/0002_c\.sql has no SQLite original"):
        migrations.paired(sqlite_files, {"0001_a.sql": "", "0002_b.sql": "", "0002_c.sql": ""})
    shipped = migrations.load("postgresql")
    assert [m.file_name for m in shipped] == [m.file_name for m in migrations.load()]


def test_an_unreachable_server_is_a_sentence_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as free:  # a port nothing listens on once closed
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    monkeypatch.setattr(postgres, "CONNECT_TIMEOUT", 1.0)
    url = f"postgresql://postgres:s3cret-word@127.0.0.1:{port}/nextapi"
    with pytest.raises(ConnectionError) as refused:
        asyncio.run(dbm.open_database(url))
    assert str(refused.value).startswith(
        f"PostgreSQL at postgresql://postgres:***@127.0.0.1:{port}"
    )
    assert "s3cret-word" not in str(refused.value)


def test_a_database_that_does_not_exist_is_named_by_the_servers_words(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "CONNECT_TIMEOUT", 1.0)  # the pool's wait, then the reason
    missing = pg_url.rpartition("/")[0] + "/nextapi_no_such_database"
    with pytest.raises(ConnectionError) as refused:
        asyncio.run(dbm.open_database(missing))
    assert 'database "nextapi_no_such_database" does not exist' in str(refused.value)


def test_a_password_is_redacted_in_every_form_of_url() -> None:
    assert postgres.redact("postgresql://u:pw@h:5/db?sslmode=require") == (
        "postgresql://u:***@h:5/db?sslmode=require"
    )
    assert postgres.redact("postgresql://h/db?user=u&password=pw") == (
        "postgresql://h/db?user=u&password=***"
    )
    assert postgres.redact("host=h password=pw dbname=d") == "host=h password=*** dbname=d"
    assert postgres.redact("postgresql:///db") == "postgresql:///db"
