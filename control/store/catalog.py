"""The model catalog's storage: seeded once from config/models.toml at the first start, then
kept in SQLite and changed only through the admin API (every change audited and published to
the edges in the next policy snapshot)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from control.store import db as dbm
from control.store.database import Database, Queries
from proxy.core.seedance.catalog import Catalog, fraction_text, parse_family

log = logging.getLogger(__name__)
SEEDED = "catalog_seeded"
PRICING = "catalog_pricing"  # markup_percent and credits_per_usd, as exact text


async def seed(db: Database, path: Path | None) -> None:
    """Fill an empty catalog from the file, once per database: families deleted later through
    the API stay deleted across restarts. Two control planes starting at once on one database
    seed it once (the marker row is claimed by its unique key)."""
    if await dbm.fetch_one(db, "SELECT 1 FROM meta WHERE key=?", SEEDED) is not None:
        return
    catalog = Catalog.load(path)
    now = dbm.now()
    pricing = {
        "markup_percent": fraction_text(catalog.markup_percent),
        "credits_per_usd": fraction_text(catalog.credits_per_usd),
    }
    async with db.transaction() as tx:
        claimed = await tx.execute(
            "INSERT INTO meta (key, value) VALUES (?, '1') ON CONFLICT DO NOTHING", (SEEDED,)
        )
        if claimed.rowcount == 0:
            return  # seeded meanwhile, by another control plane on this database
        for name, family in catalog.families.items():
            await tx.execute(
                "INSERT INTO model_families (name, spec, created_at, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (name, json.dumps(family.spec, separators=(",", ":")), now, now),
            )
        await tx.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (PRICING, json.dumps(pricing)),
        )
    log.info("model catalog seeded with %d families", len(catalog.families))


async def wire(db: Queries) -> dict[str, Any]:
    """The catalog as it travels in the policy snapshot (Catalog.from_wire reads it)."""
    row = await dbm.fetch_one(db, "SELECT value FROM meta WHERE key=?", PRICING)
    pricing = json.loads(row["value"]) if row is not None else {}
    families = await dbm.fetch_all(db, "SELECT name, spec FROM model_families ORDER BY name")
    return {**pricing, "families": {f["name"]: json.loads(f["spec"]) for f in families}}


def checked(current: Catalog, name: str, spec: Any) -> dict[str, Any]:
    """The family's document as it will be stored, after checking it alone and beside the
    other families (no id claimed twice). Raises CatalogError."""
    family = parse_family(name, spec)
    Catalog.build({**current.families, name: family})
    return family.spec


async def store(tx: Queries, name: str, spec: dict[str, Any]) -> bool:
    """Insert or replace a family; True if it is new."""
    now = dbm.now()
    text = json.dumps(spec, separators=(",", ":"))
    cursor = await tx.execute(
        "UPDATE model_families SET spec=?, updated_at=? WHERE name=?", (text, now, name)
    )
    if cursor.rowcount:
        return False
    await tx.execute(
        "INSERT INTO model_families (name, spec, created_at, updated_at) VALUES (?, ?, ?, ?)",
        (name, text, now, now),
    )
    return True


async def remove(tx: Queries, name: str) -> bool:
    cursor = await tx.execute("DELETE FROM model_families WHERE name=?", (name,))
    return cursor.rowcount > 0


async def times(db: Queries) -> dict[str, tuple[float, float]]:
    rows = await dbm.fetch_all(db, "SELECT name, created_at, updated_at FROM model_families")
    return {row["name"]: (row["created_at"], row["updated_at"]) for row in rows}
