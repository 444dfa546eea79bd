"""The two backends' schemas, migrated from zero, are one schema: the same tables with the same
columns in the same order, of the matching types and nullability, the same indexes and
triggers, compared from SQLite's catalog (sqlite_master, pragma_table_info) and PostgreSQL's
(information_schema, pg_indexes). PostgreSQL's own additions are left out by name: the
`schema_version` table and each table's explicit `rowid` (migrations/postgres/README.md), the
request log's partitions (a partitioned table's rows, control/store/partitions.py) and the index
of each of its tables' rowid (a UNIQUE constraint on the other tables, which a partitioned table
cannot have)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from control.store import db as dbm
from control.store.database import Database

# The PostgreSQL type each SQLite declared type is written as (migrations/postgres/README.md).
TYPES = {"TEXT": "text", "INTEGER": "bigint", "REAL": "double precision", "BLOB": "bytea"}
PG_ONLY_TABLES = {"schema_version"}
PG_ONLY_INDEXES = {"usage_rowid", "security_events_rowid"}
# The tables that are partitions of another (their columns and indexes are its own).
PARTITIONS = "SELECT inhrelid::regclass::text FROM pg_inherits"

type Schema = dict[str, Any]


async def sqlite_schema(db: Database) -> Schema:
    tables = [
        row["name"]
        for row in await db.fetch_all(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    columns = {}
    for table in tables:
        info = await db.fetch_all(
            'SELECT name, type, "notnull", pk FROM pragma_table_info(?) ORDER BY cid', table
        )
        # A key column is never NULL on PostgreSQL; SQLite's pragma says so only when declared.
        columns[table] = [
            (c["name"], TYPES[c["type"]], bool(c["notnull"] or c["pk"])) for c in info
        ]
    named = "SELECT name FROM sqlite_master WHERE type=? AND sql IS NOT NULL"
    return {
        "columns": columns,
        "indexes": sorted(r["name"] for r in await db.fetch_all(named, "index")),
        "triggers": sorted(r["name"] for r in await db.fetch_all(named, "trigger")),
    }


async def postgres_schema(db: Database) -> tuple[Schema, dict[str, list[str]]]:
    """The schema, and each table's columns as PostgreSQL has them (rowid included)."""
    rows = await db.fetch_all(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
        f"WHERE table_schema = 'public' AND table_name NOT IN ({PARTITIONS}) "
        "ORDER BY table_name, ordinal_position"
    )
    columns: dict[str, list[tuple[str, str, bool]]] = {}
    every: dict[str, list[str]] = {}
    for row in rows:
        if row["table_name"] in PG_ONLY_TABLES:
            continue
        every.setdefault(row["table_name"], []).append(row["column_name"])
        if row["column_name"] != "rowid":
            entry = (row["column_name"], row["data_type"], row["is_nullable"] == "NO")
            columns.setdefault(row["table_name"], []).append(entry)
    # The indexes a migration created by name, not those backing a key or UNIQUE constraint
    # (SQLite's sqlite_autoindex_*, which have no SQL).
    indexes = await db.fetch_all(
        "SELECT indexname FROM pg_indexes i WHERE schemaname = 'public' AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = "
        "(quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass) "
        f"AND tablename NOT IN ({PARTITIONS})"
    )
    triggers = await db.fetch_all(
        "SELECT DISTINCT trigger_name FROM information_schema.triggers "
        "WHERE trigger_schema = 'public'"
    )
    schema = {
        "columns": columns,
        "indexes": sorted(r["indexname"] for r in indexes if r["indexname"] not in PG_ONLY_INDEXES),
        "triggers": sorted(r["trigger_name"] for r in triggers),
    }
    return schema, every


def test_both_backends_migrated_from_zero_have_one_schema(tmp_path: Path, pg_url: str) -> None:
    async def main() -> tuple[Schema, Schema, dict[str, list[str]]]:
        lite = await dbm.open_database(tmp_path / "nextapi.sqlite3")
        pg = await dbm.open_database(pg_url)
        try:
            pg_schema, pg_columns = await postgres_schema(pg)
            return await sqlite_schema(lite), pg_schema, pg_columns
        finally:
            await lite.close()
            await pg.close()

    lite, pg, pg_columns = asyncio.run(main())
    assert len(lite["columns"]) >= 30 and len(lite["indexes"]) >= 40  # the whole schema read
    assert sorted(pg["columns"]) == sorted(lite["columns"])
    for table, columns in lite["columns"].items():
        assert pg["columns"][table] == columns, table
    assert pg["indexes"] == lite["indexes"]
    assert (
        pg["triggers"] == lite["triggers"] == ["ledger_adds_to_total", "ledger_entries_are_final"]
    )
    # Every table has its rowid, last of the columns its CREATE TABLE made.
    assert all("rowid" in columns for columns in pg_columns.values()), pg_columns
