"""How module SQL and Python values pass to psycopg: the text with `?` placeholders as psycopg's
`%s`, rows that answer by name and by position as sqlite3.Row does, values adapted as SQLite
stores them (a bool an integer; an integral SUM an int, not a Decimal), and a database URL as it
may be shown (no password). The PostgreSQL backend's (control/store/postgres.py)."""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.abc import Buffer
from psycopg.adapt import AdaptersMap, Dumper, Loader
from psycopg.rows import RowMaker


def redact(url: str) -> str:
    """The URL as it may be shown in a message or a log: any password as `***`."""
    if "://" not in url:  # libpq's `key=value …` form
        return _KEYWORD_PASSWORD.sub(r"\1***", url)
    parts = urlsplit(url)
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    query = _QUERY_PASSWORD.sub(r"\1***", parts.query)
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # nothing to hide (and `postgresql:///db` stays as written)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"((?:^|&)password=)[^&]*", re.IGNORECASE)

# SQL as the translation reads it: quoted text and comments (kept as they are, but for `%`),
# and everything else, where a `?` is a placeholder.
_SQL_PIECE = re.compile(
    r"""'(?:[^']|'')*'?|"(?:[^"]|"")*"?|--[^\n]*|/\*.*?(?:\*/|\Z)|[^'"?%/-]+|.""", re.DOTALL
)


@functools.lru_cache(maxsize=4096)
def placeholders(sql: str) -> str:
    """`sql` with each `?` outside quotes and comments as `%s`, and every `%` doubled (psycopg
    reads `%` everywhere, quoted or not, once a statement has parameters, and every statement
    here is given them, if none)."""
    out: list[str] = []
    for match in _SQL_PIECE.finditer(sql):
        piece = match.group()
        out.append("%s" if piece == "?" else piece.replace("%", "%%"))
    return "".join(out)


class PgRow(tuple):
    """A row by position (it is a tuple) and by column name, case-insensitive as sqlite3.Row."""

    __slots__ = ()
    _names: tuple[str, ...] = ()
    _index: dict[str, int] = {}  # noqa: RUF012 - set per shape, read-only

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._index[key.lower()])
            except KeyError:
                raise IndexError(f"No item with that key: {key!r}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


@functools.lru_cache(maxsize=1024)
def _row_class(names: tuple[str, ...]) -> type[PgRow]:
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        index.setdefault(name.lower(), position)  # the first of a repeated name, as sqlite3
    return type("PgRow", (PgRow,), {"__slots__": (), "_names": names, "_index": index})


def pg_row(cursor: Any) -> RowMaker[PgRow]:
    """psycopg's row factory for PgRow: one class per shape of result, reused."""
    names = tuple(column.name for column in cursor.description or ())
    return _row_class(names)


class _BoolAsInteger(Dumper):
    """SQLite stores a bool as 1 or 0 and the schema's flags are integers on both."""

    oid = psycopg.postgres.types["int8"].oid

    def dump(self, obj: bool) -> Buffer:
        return b"1" if obj else b"0"


class _NumericAsNumber(Loader):
    """A numeric (what SUM of a bigint is) as SQLite answers it: an int when integral."""

    def load(self, data: Buffer) -> int | float:
        text = bytes(data).decode()
        return float(text) if any(c in text for c in ".eEnN") else int(text)


ADAPTERS = AdaptersMap(psycopg.adapters)
ADAPTERS.register_dumper(bool, _BoolAsInteger)
ADAPTERS.register_loader("numeric", _NumericAsNumber)
