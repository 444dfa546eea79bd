"""The control plane's schema changes, one file each, `NNNN_what_it_does.sql`, applied in order
by control.store.db; `PRAGMA user_version` records how many a database has had. A new change is
a new file numbered one past the newest (its why in `--` comments at the top); a file already
released is never edited, as databases out there have run it. On PostgreSQL the same changes run
from postgres/, one twin a file with the same number and name (its README says how the types
are said there); its version is the row of `schema_version`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

POSTGRES_FOLDER = "postgres"
FILE_NAME = re.compile(r"(?P<number>\d{4})_(?P<what>[a-z0-9_]+)\.sql")


@dataclass(frozen=True, slots=True)
class Migration:
    number: int  # the user_version a database is at once it has run this
    file_name: str
    sql: str


def load(backend: str = "sqlite") -> list[Migration]:
    """The shipped migrations of `backend` (`sqlite` or `postgresql`), in order (read as package
    data: a checkout, an editable install and a wheel alike). PostgreSQL's must be twins of
    SQLite's, number for number and name for name."""
    folder = resources.files(__name__)
    texts = _sql_files(folder)
    if backend == "sqlite":
        return ordered(texts)
    twins = _sql_files(folder / POSTGRES_FOLDER)
    return ordered(paired(texts, twins))


def _sql_files(folder: Traversable) -> dict[str, str]:
    return {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    }


def paired(sqlite_texts: Mapping[str, str], twins: Mapping[str, str]) -> Mapping[str, str]:
    """The PostgreSQL twins, once each SQLite migration has one of its number and name and each
    twin has its SQLite original: otherwise one version would mean two schemas, so the control
    plane stops before any database is touched."""
    missing = sorted(set(sqlite_texts) - set(twins))
    if missing:
        raise RuntimeError(
            f"The migration {missing[0]} has no PostgreSQL twin: write "
            f"control/store/migrations/{POSTGRES_FOLDER}/{missing[0]}, the same change in "
            f"PostgreSQL's SQL (missing: {', '.join(missing)})."
        )
    orphans = sorted(set(twins) - set(sqlite_texts))
    if orphans:
        raise RuntimeError(
            f"The PostgreSQL migration {POSTGRES_FOLDER}/{orphans[0]} has no SQLite original of "
            f"that number and name (extra: {', '.join(orphans)}): each change is written for "
            "both backends under one name."
        )
    return twins


def ordered(texts: Mapping[str, str]) -> list[Migration]:
    """The migrations of these files (name to SQL), numbered 1, 2, 3, … with none missing and
    none twice: a gap or a doubled number would leave databases at different schemas under one
    version, so it stops the control plane before any database is touched."""
    by_number: dict[int, Migration] = {}
    for file_name in sorted(texts):
        match = FILE_NAME.fullmatch(file_name)
        if match is None:
            raise RuntimeError(
                f"The migration file {file_name} is not named NNNN_what_it_does.sql "
                "(four digits, lower-case words): rename it so its place in the order is clear."
            )
        number = int(match["number"])
        if number in by_number:
            raise RuntimeError(
                f"The migrations {by_number[number].file_name} and {file_name} have one number, "
                f"{number}: renumber the newer one past the newest."
            )
        by_number[number] = Migration(number, file_name, texts[file_name])
    found = sorted(by_number)
    for expected, number in enumerate(found, start=1):
        if number != expected:
            raise RuntimeError(
                f"The migrations skip number {expected} (the next file is "
                f"{by_number[number].file_name}): the numbers must run 1, 2, 3, … with none "
                "missing."
            )
    return [by_number[number] for number in found]
