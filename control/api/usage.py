"""Usage records: the idempotent sink the spool ingests into, and the request log admins page."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from control.api import csvout, validate
from control.api.access import admin_for
from control.api.orgs import load_org
from control.api.rows import newest_first
from control.api.security import store_events
from control.http import bad_request, rfc3339
from control.jobs.abuse import suspend_abusers
from control.store.database import Queries
from control.store.state import ControlState
from control.store.wallet import assign_hold, release_hold
from proxy.core import security_events as security
from proxy.core.seedance.routes import CREATE
from proxy.core.usage_records import FIELDS

log = logging.getLogger(__name__)

CHUNK = 100  # hold outcomes a transaction of the main file's
# Records handled between two turns of the event loop: a batch of 1,000 costs some 10 ms of
# Python (reading, checking, the rows), which a hold's every step would otherwise wait out.
SLICE = 25


async def store_usage(state: ControlState, records: list[dict[str, Any]]) -> None:
    """Store a batch of spooled records (usage records and security events): the records in
    one transaction of the request log's, then each create's outcome applied to its hold in
    the main file. A record seen before (same request id) is ignored, so replaying a spool
    after a crash never counts a request twice."""
    usage = [record for record in records if "kind" not in record]
    events = [record for record in records if security.is_event(record)]
    if unknown := len(records) - len(usage) - len(events):
        # Only a newer edge's spool could hold another kind (an edge apart's batches are
        # checked first); never log the records themselves.
        log.warning("usage: %d records of an unknown kind ignored", unknown)
    now = time.time()
    rows = await in_slices(usage, lambda record: tuple(map(record.get, FIELDS)))
    # The log first, the holds second, in two files that commit apart. The order is safe
    # either way a crash cuts it: the batch is acknowledged (its spool segment deleted) only
    # once both are done, so the edge sends it again, and each half is idempotent (a record
    # is stored once; assign_hold and release_hold change a hold only while it is held), so
    # the resent batch adds nothing twice and finishes what was left. The log goes first so
    # that the durable record of a create exists before its hold moves on its say-so.
    if state.log_days:  # each record's day made, on PostgreSQL
        for table, stored in (("usage", usage), ("security_events", events)):
            if stored:
                await state.log_days[table].ensure(record.get("ts") for record in stored)
    if usage or events:
        async with state.log.transaction() as tx:
            await tx.insert_new("usage", FIELDS, rows)  # a record stored before: skipped
            await store_events(tx, events)
    # Hold outcomes in transactions of at most CHUNK: the main file's writer is the holds',
    # and a create's hold waits behind one chunk, never a whole batch (an edge draining its
    # spool sends 1,000 records a batch, about a tenth of them creates, back to back).
    outcomes = create_outcomes(usage)
    if outcomes:
        async with state.db.reader() as reader:
            outcomes = await still_to_apply(reader, outcomes)
    for start in range(0, len(outcomes), CHUNK):
        async with state.transaction() as tx:
            for request_id, task_id in outcomes[start : start + CHUNK]:
                if task_id is not None:
                    await assign_hold(tx, request_id, task_id, now)
                else:
                    await release_hold(tx, request_id, now)
    await suspend_abusers(state, usage, state.suspend_after_rate_limited)


async def in_slices[T, R](items: list[T], each: Callable[[T], R]) -> list[R]:
    """`each` of every item, handing the event loop back every SLICE items."""
    done: list[R] = []
    for start in range(0, len(items), SLICE):
        if start:
            await asyncio.sleep(0)
        done += [each(item) for item in items[start : start + SLICE]]
    return done


async def still_to_apply(
    db: Queries, outcomes: list[tuple[str, str | None]]
) -> list[tuple[str, str | None]]:
    """The outcomes that would still change their hold, read from `db` (a reader: committed
    holds only, where the writer's connection would also show a transaction still open, which
    may yet roll back): most were applied by the edge's own call before its record came, and a
    transaction of the main file's writer for nothing would hold up the holds all the same.
    Only a hold with no task yet changes (assign_hold and release_hold check it again, in
    their transaction), and a hold once given a task never loses it, so one skipped here would
    be left as it is there."""
    pending: list[tuple[str, str | None]] = []
    for start in range(0, len(outcomes), CHUNK):
        part = outcomes[start : start + CHUNK]
        rows = await db.fetch_all(
            "SELECT id, status FROM reservations WHERE task_id IS NULL "
            f"AND id IN ({', '.join('?' for _ in part)})",
            *[request_id for request_id, _ in part],
        )
        untasked = {row["id"]: row["status"] for row in rows}
        for request_id, task_id in part:
            status = untasked.get(request_id)
            if status == "held" or (status == "released" and task_id is not None):
                pending.append((request_id, task_id))
    return pending


def create_outcomes(usage: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """(request id, task id or None) of each create, as its record says: the durable copy of
    what the edge did with the create's hold (assigned it to the task the upstream made, or
    released it), in case the edge could not tell the ledger itself. The edge writes the record
    once the create's outcome is final, so a record without a task is a create not accepted."""
    outcomes: list[tuple[str, str | None]] = []
    for record in usage:
        request_id, task_id = record.get("request_id"), record.get("task_id")
        if record.get("route") != CREATE.template or not isinstance(request_id, str):
            continue
        accepted = record.get("status") == 200 and isinstance(task_id, str)
        outcomes.append((request_id, task_id if accepted else None))
    return outcomes


def request_json(row: Any) -> dict[str, Any]:
    record = {field: row[field] for field in FIELDS}
    record["ts"] = rfc3339(row["ts"])
    record["id"] = record.pop("request_id")
    return record


REQUEST_COLUMNS = ["id" if field == "request_id" else field for field in FIELDS]


_KEY_ID = re.compile(r"[A-Za-z0-9]{16}")
_STATUS = re.compile(r"([1-5])(xx|[0-9]{2})")
MAX_FILTER_TEXT = 200
# Status classes most requests fall in: read by time and checked row by row, since a page fills
# at once. The others (errors) are read off the status index, then sorted: there are few.
COMMON_CLASSES = ("2",)


def request_filters(params: QueryParams) -> tuple[list[str], list[Any]]:
    """The request log's filters beyond the time: `key_id`, `status` (a code such as `404` or
    a class such as `5xx`), `model`, `route` (a template such as `GET /api/v3/…/tasks/{id}`).
    Each is served by an index of (org_id, it, ts)
    (control/store/migrations/0012_request_log_filter_indexes.sql)."""
    clauses: list[str] = []
    args: list[Any] = []
    if "key_id" in params:
        if not _KEY_ID.fullmatch(params["key_id"]):
            raise bad_request("`key_id` must be a key id (16 letters and digits).")
        clauses.append("key_id=?")
        args.append(params["key_id"])
    if "status" in params:
        status = _STATUS.fullmatch(params["status"])
        if status is None:
            raise bad_request("`status` must be a status code (`404`) or a class (`4xx`).")
        digit, rest = status.groups()
        if rest != "xx":
            clauses.append("status=?")
            args.append(int(digit + rest))
        else:
            column = "+status" if digit in COMMON_CLASSES else "status"
            clauses.append(f"{column}>=? AND {column}<?")
            args.extend([int(digit) * 100, int(digit) * 100 + 100])
    for name in ("model", "route"):
        if name in params:
            value = params[name]
            if not value or len(value) > MAX_FILTER_TEXT or validate.has_control(value):
                raise bad_request(
                    f"`{name}` must be non-empty text of at most {MAX_FILTER_TEXT} characters."
                )
            clauses.append(f"{name}=?")
            args.append(value)
    return clauses, args


async def list_requests(request: Request) -> Response:
    """The org's request log, newest first, paged by an opaque cursor (CSV: every page);
    filtered by `key_id`, `status` (`404` or `4xx`), `model`, `route`, `from`, `to`."""
    state: ControlState = request.app.state.control
    await admin_for(request)
    org_id = request.path_params["org"]
    csv = csvout.wants_csv(request)
    filters, filter_args = request_filters(request.query_params)
    await load_org(state, org_id)
    clauses, args = ["org_id=?", *filters], [org_id, *filter_args]

    async def read(cursor: str | None) -> dict[str, Any]:
        return await newest_first(request, state.log, "usage", request_json, clauses, args, cursor)

    return await csvout.page_or_csv(request, csv, REQUEST_COLUMNS, read, "requests")
