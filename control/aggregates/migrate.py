"""Making the rollups' tables where they live: on SQLite their file's migrations run by
control/store/rollupfile.py, counted by its user_version; on PostgreSQL, where they are
tables of the control plane's database, their migrations under the migrations' advisory lock,
counted in `meta` (`rollups_version`), so that two control planes starting at once never both
make them."""

from __future__ import annotations

from collections.abc import Sequence

from control.store.db import MIGRATION_LOCK, NewerSchema, refuse_newer
from control.store.postgres import PostgresDatabase

VERSION_KEY = "rollups_version"  # in `meta`, on PostgreSQL: the rollup migrations run


async def migrate_postgres(db: PostgresDatabase, known: Sequence[str]) -> None:
    """Runs the rollup migrations past `rollups_version`, each in a transaction with the
    version it reaches; a version past this release's is refused (as the rollup file's)."""
    async with db.connection() as connection:
        await connection.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            cursor = await connection.execute(
                "SELECT value FROM meta WHERE key = %s", (VERSION_KEY,)
            )
            row = await cursor.fetchone()
            version = int(row[0]) if row else 0
            try:
                refuse_newer(version, len(known))
            except NewerSchema as refused:
                raise NewerSchema(f"{db.shown_url}: the usage rollups: {refused}") from None
            for number, script in enumerate(known[version:], start=version + 1):
                async with connection.transaction():
                    await connection.execute(script)  # no parameters: several statements
                    await connection.execute(
                        "INSERT INTO meta (key, value) VALUES (%s, %s) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (VERSION_KEY, str(number)),
                    )
        finally:
            await connection.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
