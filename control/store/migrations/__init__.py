"""The control plane's schema changes, one file each, `NNNN_what_it_does.sql`, applied in order
by control.store.db.migrate; `PRAGMA user_version` records how many a database has had. A new
change is a new file numbered one past the newest (its why in `--` comments at the top); a file
already released is never edited, as databases out there have run it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

FILE_NAME = re.compile(r"(?P<number>\d{4})_(?P<what>[a-z0-9_]+)\.sql")


@dataclass(frozen=True, slots=True)
class Migration:
    number: int  # the user_version a database is at once it has run this
    file_name: str
    sql: str


def load() -> list[Migration]:
    """The shipped migrations, in order (read as package data: a checkout, an editable install
    and a wheel alike)."""
    folder = resources.files(__name__)
    texts = {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    }
    return ordered(texts)


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
