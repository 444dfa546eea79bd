"""The schema a database migrated from zero has, as control/store/schema.sql holds it: checked
in, so a change to the tables reads as a diff of one file, and compared by a test with what the
migrations build. `python -m control.store.schema --write` regenerates the file; `--check`
fails when it is stale; with neither, the schema is printed."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from importlib import resources
from pathlib import Path

import aiosqlite

from control.store import db as dbm

SCHEMA_FILE = Path(__file__).with_name("schema.sql")
REGENERATE = "python -m control.store.schema --write"
HEADER = f"""\
-- Generated, do not edit: the schema of a database migrated from zero by
-- control/store/migrations/, as SQLite records it (sqlite_master), each table followed by its
-- indexes and triggers, whitespace normalised. A change to the schema is a new migration; then
-- regenerate this file with `{REGENERATE}`.
"""

# SQL as tokens: quoted text (kept as written), comments and whitespace (both dropped), the
# punctuation the layout turns on, and runs of anything else.
_TOKEN = re.compile(
    r"""(?P<quoted>'(?:[^']|'')*'|"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\])"""
    r"|(?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))"
    r"|(?P<space>\s+)"
    r"|(?P<punct>[(),;])"
    r"|(?P<word>(?:[^\s'\"`\[(),;\-/]|-(?!-)|/(?!\*))+)",
    re.DOTALL,
)
_ORDER = """
    SELECT type, sql FROM sqlite_master
    WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'
    ORDER BY tbl_name, CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, name
"""
_INDENT = "    "


def _tokens(sql: str) -> list[tuple[str, bool]]:
    """Each token with whether whitespace (or a comment) came before it as written."""
    out: list[tuple[str, bool]] = []
    spaced = False
    for match in _TOKEN.finditer(sql):
        if match["space"] is not None or match["comment"] is not None:
            spaced = True
            continue
        out.append((match.group(), spaced))
        spaced = False
    return out


def _join(tokens: list[tuple[str, bool]]) -> str:
    """One line: single spaces where the text had any, none inside parentheses' edges or
    before a comma or semicolon, one after each comma (ALTER TABLE's added columns read as
    if written in the CREATE)."""
    text = ""
    previous = ""
    for token, spaced in tokens:
        if text and previous != "(" and token not in {")", ",", ";"}:
            if spaced or previous == ",":
                text += " "
        text += token
        previous = token
    return text


def _depths(tokens: list[tuple[str, bool]]) -> list[int]:
    """The parenthesis depth each token sits at (an opening one at its outer depth)."""
    depths, depth = [], 0
    for token, _ in tokens:
        if token == ")":
            depth -= 1
        depths.append(depth)
        if token == "(":
            depth += 1
    return depths


def _table(tokens: list[tuple[str, bool]]) -> str:
    """CREATE TABLE with one column or constraint a line."""
    depths = _depths(tokens)
    opening = next((i for i, (t, _) in enumerate(tokens) if t == "("), None)
    if opening is None:  # CREATE TABLE … AS SELECT
        return _join(tokens)
    closing = next(i for i in range(opening + 1, len(tokens)) if depths[i] == 0)
    parts: list[list[tuple[str, bool]]] = [[]]
    for i in range(opening + 1, closing):
        if tokens[i][0] == "," and depths[i] == 1:
            parts.append([])
        else:
            parts[-1].append(tokens[i])
    lines = [_join(tokens[: opening + 1])]
    lines += [_INDENT + _join(part) + "," for part in parts]
    lines[-1] = lines[-1][:-1]
    lines.append(_join(tokens[closing:]))
    return "\n".join(lines)


def _trigger(tokens: list[tuple[str, bool]]) -> str:
    """CREATE TRIGGER with one statement of its body a line."""
    words = [t.upper() for t, _ in tokens]
    if "BEGIN" not in words or words[-1] != "END":
        return _join(tokens)
    begin = words.index("BEGIN")
    depths = _depths(tokens)
    lines = [_join(tokens[: begin + 1])]
    statement: list[tuple[str, bool]] = []
    for i in range(begin + 1, len(tokens) - 1):
        statement.append(tokens[i])
        if tokens[i][0] == ";" and depths[i] == 0:
            lines.append(_INDENT + _join(statement))
            statement = []
    if statement:
        lines.append(_INDENT + _join(statement))
    lines.append("END")
    return "\n".join(lines)


def normalise(kind: str, sql: str) -> str:
    """One statement as schema.sql lays it out: the same for any whitespace it was written
    with (migrations indented in a Python string once, and files since, read alike)."""
    tokens = _tokens(sql)
    if kind == "table":
        return _table(tokens)
    if kind == "trigger":
        return _trigger(tokens)
    return _join(tokens)


async def dump(db: aiosqlite.Connection) -> str:
    """The schema of this database, laid out as schema.sql is (without its header)."""
    async with db.execute(_ORDER) as cursor:
        rows = list(await cursor.fetchall())
    return "".join(normalise(kind, sql) + ";\n" for kind, sql in rows)


async def from_zero() -> str:
    """The schema.sql the shipped migrations make: a database in memory, migrated from zero."""
    db = await aiosqlite.connect(":memory:", isolation_level=None)
    try:
        await dbm.migrate(db)
        return HEADER + "\n" + await dump(db)
    finally:
        await db.close()


def checked_in() -> str:
    return resources.files("control.store").joinpath("schema.sql").read_text(encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m control.store.schema", description=__doc__)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help=f"regenerate {SCHEMA_FILE.name}")
    action.add_argument("--check", action="store_true", help="exit 1 when it is stale")
    args = parser.parse_args(argv)
    schema = asyncio.run(from_zero())
    if args.write:
        SCHEMA_FILE.write_text(schema, encoding="utf-8")
        print(f"wrote {SCHEMA_FILE}")
    elif args.check:
        if checked_in() != schema:
            print(f"{SCHEMA_FILE} is stale: regenerate it with `{REGENERATE}`", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(schema)
    return 0


if __name__ == "__main__":
    sys.exit(main())
