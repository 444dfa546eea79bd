"""The org's data export: everything held about an org in one portable, machine-readable ZIP.

`GET /v1/orgs/{org}/export` (any admin token that may read) answers a ZIP streamed as it is
built, so that an org of any size costs a bounded amount of memory: `zipfile` writes into a
small in-memory sink that the response drains chunk by chunk, and the database is read in pages
of `PAGE` rows. Every file is read from one SQLite snapshot (a read-only connection of its own
holding one read transaction), so the files agree with each other and with the manifest; but
`usage.ndjson` and `security_events.ndjson`, which come from the request log's own file
(control/store/requestlog.py), are read from a snapshot of that file taken just after the main
one. Two files cannot share one snapshot: every record stored before the main snapshot is in
the export, and records stored in the milliseconds between the two may be too, ahead of what
the main files show (a create whose hold `reservations.ndjson` still has held, say). On
PostgreSQL the log is the database's own tables, and every file is read from one snapshot. The
manifest counts what each file holds.

The bundle (format `nextapi-export`, version 1):

- `org.json`: the org, as `GET /v1/orgs/{org}` shows it (one JSON object);
- `keys.ndjson`, `usage.ndjson`, `ledger.ndjson`, `reservations.ndjson`, `tasks.ndjson`,
  `payments.ndjson`, `invoices.ndjson`, `disputes.ndjson`, `webhooks.ndjson`,
  `webhook_deliveries.ndjson`, `audit.ndjson`, `security_events.ndjson`: one JSON object a line
  (UTF-8), oldest first;
- `manifest.json`, written last: the format and its version, the org id, `generated_at`, and
  for every file its format and number of records.

Never in it: API key secrets or their hashes, webhook signing secrets, admin tokens, or the
signed callback ingress URLs the edge relays to the upstream. Money is in integer
micro-credits; times are RFC 3339 strings in UTC. An export is a read: it is not audited.
"""

from __future__ import annotations

import contextlib
import json
import zipfile
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from datetime import UTC, datetime
from typing import IO, Any

import anyio
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from control.api.access import admin_for
from control.api.audit import audit_json
from control.api.billing import ledger_json, reservation_json, task_json
from control.api.keys import key_json
from control.api.orgs import load_org, org_json
from control.api.security import event_json
from control.api.usage import request_json
from control.api.webhooks import webhook_json
from control.http import rfc3339
from control.payments.disputes import dispute_json
from control.payments.invoices import invoice_json
from control.payments.purchases import payment_json
from control.store import db as dbm
from control.store.database import Dialect, Row
from control.store.state import ControlState
from proxy.core.callback_tokens import INGRESS_PREFIX

FORMAT = "nextapi-export"
FORMAT_VERSION = 1
PAGE = 1000  # rows fetched from SQLite at a time
CHUNK = 64 * 1024  # bytes gathered before a chunk goes out
LOG_FILES = ("usage.ndjson", "security_events.ndjson")  # read from the request log's file

type Record = dict[str, Any]
type Stamp = tuple[int, int, int, int, int, int]  # a ZIP entry's time (UTC)


async def export_org(request: Request) -> StreamingResponse:
    """Everything held about the org, as a ZIP of NDJSON files with a manifest."""
    state: ControlState = request.app.state.control
    await admin_for(request)
    org_id = request.path_params["org"]
    org = await load_org(state, org_id)  # 404 before anything streams
    generated = dbm.now()
    day = datetime.fromtimestamp(generated, UTC).strftime("%Y-%m-%d")
    return _ClosingStream(
        _bundle(state, org, generated),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="nextapi-export-{org_id}-{day}.zip"',
            "Cache-Control": "no-store",
        },
    )


class _ClosingStream(StreamingResponse):
    """Closes the bundle's generator however the answer ends (a client gone mid-stream
    included), so that its snapshot is let go of at once rather than whenever the generator is
    collected: a read transaction left open would keep the WAL from being checkpointed."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            iterator = self.body_iterator
            if isinstance(iterator, AsyncGenerator):
                with anyio.CancelScope(shield=True):
                    await iterator.aclose()


class _Sink:
    """A write-only, unseekable file for `zipfile` (which then writes data descriptors): what
    it is given waits here until `drain` takes it."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts, self.size = [], 0
        return data


async def _bundle(state: ControlState, org: Row, generated: float) -> AsyncIterator[bytes]:
    """The ZIP, piece by piece. Should anything fail once the answer has begun, the error goes
    up (the app logs it) and the answer is cut short: a ZIP without its central directory,
    which no reader takes for complete."""
    org_id = org["id"]
    async with contextlib.AsyncExitStack() as snapshots:
        reader = await snapshots.enter_async_context(state.db.reader())
        # The org as the snapshot has it (it was read just now, before the snapshot began).
        org = await dbm.fetch_one(reader, "SELECT * FROM orgs WHERE id=?", org_id) or org
        log_reader = reader  # on PostgreSQL the log is the database's: one snapshot for all
        if state.log is not state.db:
            log_reader = await snapshots.enter_async_context(state.log.reader())
            # The log's snapshot begins at its first read: now, not once the main files are out.
            await dbm.fetch_one(log_reader, "SELECT COUNT(*) FROM sqlite_master")
        moment = datetime.fromtimestamp(generated, UTC)
        stamp: Stamp = (
            moment.year,
            moment.month,
            moment.day,
            moment.hour,
            moment.minute,
            moment.second,
        )
        sink = _Sink()
        files: dict[str, dict[str, Any]] = {}
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            _write_json(bundle, "org.json", org_json(org), stamp)
            files["org.json"] = {"format": "json", "records": 1}
            for name, sql, args, records in _sections(org_id, reader.dialect):
                entry = files[name] = {"format": "ndjson", "records": 0}
                source = log_reader if name in LOG_FILES else reader
                with bundle.open(_info(name, stamp), "w", force_zip64=True) as out:
                    # One query a file, read in pages; closed with this generator (a client
                    # gone), so the cursor is closed before the connection.
                    async with contextlib.aclosing(source.pages(PAGE, sql, *args)) as pages:
                        async for found in pages:
                            entry["records"] += _write(out, records.feed(found))
                            if sink.size >= CHUNK:
                                yield sink.drain()
                    entry["records"] += _write(out, records.finish())
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "org_id": org_id,
                "generated_at": rfc3339(generated),
                "files": files,
            }
            _write_json(bundle, "manifest.json", manifest, stamp)
        yield sink.drain()


class _Records:
    """Rows into records, a page at a time."""

    def __init__(self, render: Callable[[Any], Record]) -> None:
        self.render = render

    def feed(self, found: list[Any]) -> list[Record]:
        return [self.render(row) for row in found]

    def finish(self) -> list[Record]:
        return []


class _Deliveries(_Records):
    """Rows of `_SELECT_DELIVERIES` (one per attempt) into events, each with its attempts; an
    event's attempts may span two pages, so it goes out once a row of the next event is read."""

    def __init__(self) -> None:
        super().__init__(_event_json)
        self.current: Record | None = None

    def feed(self, found: list[Any]) -> list[Record]:
        done: list[Record] = []
        for row in found:
            if self.current is None or self.current["id"] != row["id"]:
                if self.current is not None:
                    done.append(self.current)
                self.current = _event_json(row)
            if row["attempt_id"] is not None:
                self.current["attempts"].append(_attempt_json(row))
        return done

    def finish(self) -> list[Record]:
        return [] if self.current is None else [self.current]


def _sections(org_id: str, dialect: Dialect) -> list[tuple[str, str, tuple[Any, ...], _Records]]:
    """Each NDJSON file: its query, the query's arguments, and how its rows become records."""
    one = (org_id,)
    mentioned = json.dumps(org_id)  # the org id as a JSON string inside an audit detail
    return [
        ("keys.ndjson", _SELECT_KEYS, one, _Records(key_json)),
        ("usage.ndjson", _SELECT_USAGE, one, _Records(request_json)),
        ("ledger.ndjson", _SELECT_LEDGER, one, _Records(ledger_json)),
        ("reservations.ndjson", _SELECT_RESERVATIONS, one, _Records(reservation_json)),
        ("tasks.ndjson", _SELECT_TASKS, one, _Records(task_json)),
        ("payments.ndjson", _SELECT_PAYMENTS, one, _Records(payment_json)),
        ("invoices.ndjson", _SELECT_INVOICES, one, _Records(invoice_json)),
        ("disputes.ndjson", _SELECT_DISPUTES, one, _Records(dispute_json)),
        ("webhooks.ndjson", _SELECT_WEBHOOKS, one, _Records(webhook_json)),
        ("webhook_deliveries.ndjson", _SELECT_DELIVERIES, (org_id, org_id), _Deliveries()),
        (
            "audit.ndjson",
            _SELECT_AUDIT.format(contains=dialect.contains("detail", "?")),
            (org_id, org_id, org_id, mentioned),
            _Records(audit_json),
        ),
        # Refusals tied to the org (its keys' failures, its allowlists): the client address the
        # edge saw for each is data held about the org's account, so it is exported too.
        ("security_events.ndjson", _SELECT_SECURITY_EVENTS, one, _Records(event_json)),
    ]


_SELECT_KEYS = "SELECT * FROM api_keys WHERE org_id=? ORDER BY created_at, id"
_SELECT_USAGE = "SELECT * FROM usage WHERE org_id=? ORDER BY ts, request_id"
_SELECT_LEDGER = "SELECT * FROM ledger WHERE org_id=? ORDER BY id"
_SELECT_RESERVATIONS = "SELECT * FROM reservations WHERE org_id=? ORDER BY created_at, id"
_SELECT_TASKS = "SELECT * FROM tasks WHERE org_id=? ORDER BY created_at, id"
_SELECT_PAYMENTS = "SELECT * FROM payments WHERE org_id=? ORDER BY created_at, id"
_SELECT_INVOICES = "SELECT * FROM invoices WHERE org_id=? ORDER BY issued_at, id"
_SELECT_DISPUTES = "SELECT * FROM disputes WHERE org_id=? ORDER BY opened_at, id"
_SELECT_WEBHOOKS = "SELECT * FROM webhooks WHERE org_id=? ORDER BY created_at, id"
_SELECT_SECURITY_EVENTS = "SELECT * FROM security_events WHERE org_id=? ORDER BY ts, request_id"
_SELECT_AUDIT = (
    "SELECT * FROM audit WHERE target=? "
    "OR target IN (SELECT id FROM api_keys WHERE org_id=?) "
    "OR target IN (SELECT id FROM webhooks WHERE org_id=?) "
    "OR {contains} ORDER BY id"
)
# One row per attempt (or one for an event never attempted), grouped by `_Deliveries`.
_SELECT_DELIVERIES = (
    "SELECT e.id, e.webhook_id, e.task_id, e.type, e.payload, e.status, e.attempts, "
    "e.next_attempt_at, e.created_at, e.updated_at, a.id AS attempt_id, a.attempted_at, "
    "a.status AS attempt_status, a.latency_ms, a.error "
    "FROM webhook_events e LEFT JOIN webhook_attempts a ON a.event_id = e.id "
    "WHERE e.webhook_id IN (SELECT id FROM webhooks WHERE org_id=?) AND e.org_id=? "
    "ORDER BY e.created_at, e.id, a.id"
)


def _event_json(row: Any) -> Record:
    return {
        "id": row["id"],
        "webhook_id": row["webhook_id"],
        "task_id": row["task_id"],
        "type": row["type"],
        "status": row["status"],
        "attempt_count": row["attempts"],
        "next_attempt_at": rfc3339(row["next_attempt_at"]),
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
        "payload": _payload(row["payload"]),
        "attempts": [],
    }


def _attempt_json(row: Any) -> Record:
    return {
        "id": row["attempt_id"],
        "attempted_at": rfc3339(row["attempted_at"]),
        "status": row["attempt_status"],
        "latency_ms": row["latency_ms"],
        "error": row["error"],
    }


def _payload(raw: bytes | str) -> Any:
    """The task object an event carries. A signed callback ingress URL (the edge's, relayed to
    the upstream in the customer's place) is a credential of sorts: it is left out."""
    text = raw if isinstance(raw, str) else bytes(raw).decode("utf-8", "replace")
    try:
        task = json.loads(text)
    except ValueError:
        return text
    if isinstance(task, dict) and INGRESS_PREFIX in str(task.get("callback_url") or ""):
        task["callback_url"] = None
    return task


def _write(out: IO[bytes], records: list[Record]) -> int:
    """NDJSON lines into a member of the bundle; returns how many."""
    if records:
        out.write(b"".join(_line(record) for record in records))
    return len(records)


def _line(record: Record) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _info(name: str, stamp: Stamp) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=stamp)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _write_json(bundle: zipfile.ZipFile, name: str, value: Any, stamp: Stamp) -> None:
    text = json.dumps(value, ensure_ascii=False, indent=2) + "\n"
    bundle.writestr(_info(name, stamp), text.encode())
