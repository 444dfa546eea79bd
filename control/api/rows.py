"""Row operations the admin handlers share: paging by insertion order, and audited updates."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import EllipsisType
from typing import Any

from starlette.requests import Request

from control.http import decode_cursor, encode_cursor, not_found, page_limit, parse_time, rfc3339
from control.store import db as dbm
from control.store.adminauth import Admin
from control.store.database import Queries, Row
from control.store.state import ControlState


def grace_end(until: float | None) -> str | None:
    """When a rotated-out secret stops working, while it still works (then None)."""
    return rfc3339(until) if until and until > dbm.now() else None


def columns_json(
    row: Row,
    columns: list[str],
    *,
    times: tuple[str, ...] = (),
    stored: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The row's `columns`, in order, as the API answers them: `times` in RFC 3339, `stored`
    decoded from the JSON text they are kept in."""
    return {
        column: rfc3339(row[column])
        if column in times
        else dbm.loads(row[column])
        if column in stored
        else row[column]
        for column in columns
    }


async def load(state: ControlState, table: str, row_id: str, what: str) -> Row:
    """The row with this id, or a 404 naming `what`."""
    row = await dbm.fetch_one(state.db, f"SELECT * FROM {table} WHERE id=?", row_id)
    if row is None:
        raise not_found(what)
    return row


def cut(found: list[Row], limit: int, *columns: str) -> tuple[list[Any], str | None]:
    """A page from the `limit + 1` rows fetched, and the cursor after it (None: the last page),
    made of the last row's `columns`."""
    if len(found) <= limit:
        return found, None
    kept = found[:limit]
    return kept, encode_cursor(*(kept[-1][column] for column in columns))


async def page(
    request: Request,
    state: ControlState,
    table: str,
    render: Callable[[Row], dict[str, Any]],
    where: str = "TRUE",
    *args: Any,
    cursor: str | EllipsisType | None = ...,
) -> dict[str, Any]:
    """`{items, next_cursor}` over `table` in insertion order; the cursor is the last rowid.
    The page starts after `cursor`, or (`...`) after the request's own `?cursor=`."""
    limit = page_limit(request)
    if isinstance(cursor, EllipsisType):
        cursor = request.query_params.get("cursor")
    after = decode_cursor(cursor, int)[0] if cursor else 0
    rows = await dbm.fetch_all(
        state.db,
        f"SELECT rowid AS position, * FROM {table} WHERE ({where}) AND rowid > ? "
        "ORDER BY rowid LIMIT ?",
        *args,
        after,
        limit + 1,
    )
    kept, next_cursor = cut(rows, limit, "position")
    return {"items": [render(row) for row in kept], "next_cursor": next_cursor}


def time_clauses(params: Mapping[str, str]) -> tuple[list[str], list[float]]:
    """The SQL clauses (and their arguments) of a log's `from` (inclusive) and `to`
    (exclusive) over its `ts` column; a bad time is a 400 naming it."""
    clauses: list[str] = []
    args: list[float] = []
    if "from" in params:
        clauses.append("ts>=?")
        args.append(parse_time(params["from"], "from"))
    if "to" in params:
        clauses.append("ts<?")
        args.append(parse_time(params["to"], "to"))
    return clauses, args


async def newest_first(
    request: Request,
    db: Queries,
    table: str,
    render: Callable[[Row], dict[str, Any]],
    clauses: list[str],
    args: list[Any],
    cursor: str | None = None,
) -> dict[str, Any]:
    """`{items, next_cursor}` over a log of requests (`ts`, `request_id`) in `db` (the request
    log's file), newest first, within the caller's `clauses`: `from` (inclusive) and `to`
    (exclusive) bound the time."""
    bounds, times = time_clauses(request.query_params)
    limit = page_limit(request)
    clauses, args = [*clauses, *bounds], [*args, *times]
    order = ("ts", "request_id")
    return await newest(db, table, render, clauses, args, limit, cursor, order)


async def newest(
    db: ControlState | Queries,
    table: str,
    render: Callable[[Row], dict[str, Any]],
    clauses: list[str],
    args: list[Any],
    limit: int,
    cursor: str | None,
    order: tuple[str] | tuple[str, str] = ("id",),
) -> dict[str, Any]:
    """`{items, next_cursor}` over `table` (of the state's main file, or of `db` itself) within
    `clauses`, newest first by `order`: an integer id, or a time and then an id that breaks
    ties. The cursor is the last row's `order`."""
    clauses, args = list(clauses), list(args)
    if cursor is not None and len(order) == 1:
        clauses.append(f"{order[0]}<?")
        args.append(decode_cursor(cursor, int)[0])
    elif cursor is not None:
        when, tie = order
        last_time, last_id = decode_cursor(cursor, float, str)
        clauses.append(f"({when}<? OR ({when}=? AND {tie}<?))")
        args.extend([last_time, last_time, last_id])
    rows = await dbm.fetch_all(
        db.db if isinstance(db, ControlState) else db,
        f"SELECT * FROM {table} WHERE {' AND '.join(clauses) or 'TRUE'} "
        f"ORDER BY {', '.join(f'{column} DESC' for column in order)} LIMIT ?",
        *args,
        limit + 1,
    )
    kept, next_cursor = cut(rows, limit, *order)
    return {"items": [render(row) for row in kept], "next_cursor": next_cursor}


type Check = Callable[[Row], str | None]


async def update(
    state: ControlState,
    admin: Admin,
    table: str,
    row_id: str,
    changes: dict[str, Any],
    action: str,
    fields: list[str],
    *,
    check: Check | None = None,
) -> None:
    """Apply validated column changes in one audited transaction, then republish the policy.

    `check` is handed the row as this transaction reads it: it raises to refuse the change
    (a revoked key, a closed org), or names the action to audit instead of `action`. Checked
    on a row read before the transaction, a change committed in between (a revocation) would
    be written over."""
    if not changes:
        return
    changes = changes | {"updated_at": dbm.now()}
    assignments = ", ".join(f"{column}=?" for column in changes)
    async with state.transaction() as tx:
        if check is not None:
            row = await dbm.fetch_one(
                tx, f"SELECT * FROM {table} WHERE id=?{tx.dialect.for_update}", row_id
            )
            if row is None:  # these rows are never deleted; the handler found it
                raise not_found(table)
            action = check(row) or action
        await tx.execute(
            f"UPDATE {table} SET {assignments} WHERE id=?", (*changes.values(), row_id)
        )
        await state.audit(tx, admin.token_id, action, row_id, {"fields": sorted(fields)})
    await state.publish()
