"""The store seam: the one database interface every control-plane module reads and writes
through, and the dialect object for the little SQL that differs between backends. A module is
handed a `Database` (or, inside a transaction, a `Queries`) and never opens a database itself;
control/store/sqlite.py and control/store/postgres.py are the two implementations.

SQL is written once, with `?` placeholders, in the SQL both backends share: `INSERT … ON
CONFLICT … DO NOTHING|UPDATE`, `RETURNING`, explicit id columns (never rowid), `LIMIT`. What
cannot be shared is asked of the dialect (`db.dialect.least(a, b)`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class Row(Protocol):
    """A fetched row: by column name or position (sqlite3.Row and the PostgreSQL rows alike)."""

    def __getitem__(self, key: str | int, /) -> Any: ...

    def keys(self) -> list[str]: ...


class Result(Protocol):
    """What a statement changed."""

    @property
    def rowcount(self) -> int: ...


@dataclass(frozen=True)
class Dialect:
    """The SQL fragments that differ between backends; everything else is shared text."""

    name: str
    # A row lock taken by a SELECT in a transaction; SQLite's one writer already serialises.
    for_update: str
    # The scalar functions of two arguments (SQLite's MIN/MAX, PostgreSQL's LEAST/GREATEST).
    least_function: str
    greatest_function: str
    # LIKE matching letters of any case (SQLite's LIKE already does, for ASCII).
    like: str
    # Rows a SELECT in a transaction locks, passing over those another transaction holds.
    skip_locked: str
    # One process is the only control plane on the database (SQLite's file): what a process
    # before it left unfinished (a lease, say) is known to be abandoned when it starts.
    one_process: bool
    # The prefix that keeps an index from serving a term (SQLite's unary `+`), where a plan
    # must seek by another; PostgreSQL's planner weighs its statistics instead.
    unindexed: str
    # One `INSERT … SELECT … ON CONFLICT DO UPDATE` may update a row it inserted itself (SQLite
    # goes row by row); PostgreSQL refuses, so such rows are grouped first.
    upsert_twice: bool
    # What hands freed pages back after a purge (SQLite's incremental vacuum); PostgreSQL's
    # autovacuum does it on its own.
    reclaim: str | None
    # `x` toward zero, as an integer, `{}` for x (SQLite's CAST truncates, PostgreSQL's rounds).
    truncate_template: str
    # The UTC month of `ts` (seconds) as 'YYYY-MM', `{}` for ts.
    month_template: str
    # The position of a text in another (0: nowhere), as a function of the two.
    position_function: str
    # The request log and the rollups are files of their own, attached by name (SQLite); on
    # PostgreSQL they are tables of the one database.
    attaches_files: bool
    # The column types the schema's integers, reals and texts are said with.
    integer_type: str
    real_type: str
    text_type: str
    # What a table kept by its key alone is declared with (SQLite's WITHOUT ROWID; a
    # PostgreSQL table has no rowid beside its key anyway).
    without_rowid: str

    def least(self, a: str, b: str) -> str:
        return f"{self.least_function}({a}, {b})"

    def greatest(self, a: str, b: str) -> str:
        return f"{self.greatest_function}({a}, {b})"

    def slot(self, ts: str, width: str) -> str:
        """The start of the `width`-second slot `ts` (seconds, maybe fractional) falls in, as an
        integer: the same on both (times are never negative, so truncated is floored)."""
        return f"({self.truncate(ts)} / {width} * {width})"

    def truncate(self, x: str) -> str:
        """`x` toward zero, as an integer."""
        return self.truncate_template.format(x)

    def month(self, ts: str) -> str:
        """The UTC month `ts` (seconds) falls in, as 'YYYY-MM'."""
        return self.month_template.format(ts)

    def contains(self, text: str, part: str) -> str:
        """Whether `part` occurs in `text`, as it is (no pattern)."""
        return f"({self.position_function}({text}, {part}) > 0)"

    def attached(self, schema: str) -> str:
        """The prefix naming a table of the database attached as `schema` (none where
        nothing is attached)."""
        return f"{schema}." if self.attaches_files else ""


SQLITE = Dialect(
    "sqlite",
    for_update="",
    least_function="MIN",
    greatest_function="MAX",
    like="LIKE",
    skip_locked="",
    one_process=True,
    unindexed="+",
    upsert_twice=True,
    reclaim="PRAGMA incremental_vacuum",
    truncate_template="CAST({} AS INTEGER)",
    month_template="strftime('%Y-%m', {}, 'unixepoch')",
    position_function="instr",
    attaches_files=True,
    integer_type="INTEGER",
    real_type="REAL",
    text_type="TEXT",
    without_rowid=" WITHOUT ROWID",
)
POSTGRESQL = Dialect(
    "postgresql",
    for_update=" FOR UPDATE",
    least_function="LEAST",
    greatest_function="GREATEST",
    like="ILIKE",
    skip_locked=" FOR UPDATE SKIP LOCKED",
    one_process=False,
    unindexed="",
    upsert_twice=False,
    reclaim=None,
    truncate_template="CAST(TRUNC({}) AS bigint)",
    month_template="to_char(to_timestamp({}) AT TIME ZONE 'UTC', 'YYYY-MM')",
    position_function="strpos",
    attaches_files=False,
    integer_type="bigint",
    real_type="double precision",
    text_type="text",
    without_rowid="",
)


class Queries(Protocol):
    """Statements on a database or inside one of its transactions."""

    @property
    def dialect(self) -> Dialect: ...

    async def execute(self, sql: str, args: Sequence[Any] = (), /) -> Result: ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> None: ...

    async def insert_new(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], /
    ) -> None:
        """Insert `rows` (values in the order of `columns`) into `table`, skipping each whose
        unique key the table already holds (`INSERT … ON CONFLICT DO NOTHING`): for a batch
        that may come again. Of rows sharing a key within one call one is kept (which one is not
        promised). `table` and `columns` are a module's names, never input; no rows, nothing
        done. Inside a transaction, part of it; outside one, PostgreSQL takes one of its own,
        SQLite commits row by row (as its executemany does). On PostgreSQL the rows are COPYed
        into a staging table, then inserted from it in one statement: a little faster than row
        by row (bench/bench_pg_ingest.py)."""
        ...

    async def fetch_one(self, sql: str, *args: Any) -> Row | None: ...

    async def fetch_all(self, sql: str, *args: Any) -> list[Row]: ...

    def pages(self, size: int, sql: str, *args: Any) -> AsyncGenerator[list[Row]]:
        """The rows `size` at a time, for a read too big to hold at once (close it with
        contextlib.aclosing, so its cursor goes before its connection)."""
        ...

    async def notify(self, channel: str, payload: str) -> None:
        """Tell every other control plane on this database, once this transaction commits
        (PostgreSQL's NOTIFY; nothing on SQLite, where there is no other)."""
        ...


class Database(Queries, Protocol):
    """A database: statements outside a transaction each commit on their own."""

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Queries]:
        """Committed on success, rolled back on any error; on SQLite one at a time."""
        ...

    def reader(self) -> contextlib.AbstractAsyncContextManager[Queries]:
        """A connection of its own for a long read (an export) that must not hold up writers."""
        ...

    async def listen(self, channel: str, callback: Callable[[str], None]) -> None:
        """Call `callback` on the event loop with each payload another control plane notifies
        on `channel` (never, on SQLite)."""
        ...

    async def lead(self, job: str) -> bool:
        """Whether this control plane is the one to run `job` (a fold, a purge, a sweep) now:
        on PostgreSQL one of those on the database holds it (an advisory lock) until it stops
        or dies; on SQLite, the only one always does."""
        ...

    async def close(self) -> None: ...


async def one_value(db: Queries, sql: str, *args: Any) -> Any:
    """The first column of the first row, or None."""
    row = await db.fetch_one(sql, *args)
    return None if row is None else row[0]
