"""The request log in a file and a writer of its own (control/store/requestlog.py): a credit
hold never waits behind log inserts; a database of the previous release, its log in the main
file, keeps every record (moved once, whatever a crash cut short) and its rollups stay exact;
a lost log file is folded again from its start."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from control.api import usage as usage_api
from control.jobs.retention import DAY
from control.store import requestlog
from control.store.database import Queries
from control.store.state import ControlState
from control.store.wallet import DatabaseWallet, assign_hold
from proxy.core.seedance.routes import CREATE
from proxy.core.usage_records import FIELDS
from proxy.core.wallet import Hold
from tests.unit.conftest import ADMIN_TOKEN, DB_NAME, Control, ControlBody, ControlRunner
from tests.unit.control.test_usage_aggregates import (
    expected,
    folded_and_late,
    iso,
    keep_the_request_log,
    same,
)

ORG, KEY, MODEL = "org_acme", "key_acme", "seedance-1-0-pro-fast"


@pytest.fixture
def sqlite_plane(tmp_path: Path) -> ControlRunner:
    """A control plane on SQLite files whatever backend the suite runs on: these tests are
    about the files."""

    async def run(body: ControlBody) -> None:
        ctl = Control(tmp_path / "data", ADMIN_TOKEN)
        try:
            await ctl.start()
            await asyncio.wait_for(body(ctl), timeout=30)
        finally:
            await ctl.stop()

    return lambda body: asyncio.run(run(body))


def create_record(n: int, ts: float) -> dict[str, Any]:
    return {field: None for field in FIELDS} | {
        "request_id": f"req-{n}",
        "ts": ts,
        "org_id": ORG,
        "key_id": KEY,
        "method": "POST",
        "route": CREATE.template,
        "status": 200,
        "bytes_in": 10,
        "bytes_out": 10,
        "credits": 0,
        "task_id": f"cgt-{n}",
    }


async def add_org_and_key(state: ControlState) -> None:
    await state.db.execute(
        "INSERT INTO orgs (id, name, email, created_at, updated_at) "
        "VALUES (?, 'acme', 'a@example.com', 0, 0)",
        (ORG,),
    )
    await state.db.execute(
        "INSERT INTO api_keys (id, org_id, name, environment, secret_hash, created_at, "
        "updated_at) VALUES (?, ?, 'k', 'live', 'h', 0, 0)",
        (KEY, ORG),
    )


def test_a_hold_completes_while_a_log_insert_transaction_is_held_open(tmp_path: Path) -> None:
    """Ingest holds the request log's writer, in the middle of a batch (its records inserted,
    not committed); a reserve meanwhile takes the main file's writer and finishes. Then the
    batch commits and its create's outcome reaches its hold."""

    async def main() -> None:
        state = await ControlState.open(tmp_path / "data")
        try:
            await add_org_and_key(state)
            wallet = DatabaseWallet(state)
            await wallet.grant(ORG, 10_000_000, "top-up", "admin")
            assert await wallet.reserve(Hold("req-0", ORG, KEY, 100_000, MODEL, "default")) is None

            inserted, finish = asyncio.Event(), asyncio.Event()
            real = state.log.transaction

            @contextlib.asynccontextmanager
            async def held_open() -> AsyncIterator[Queries]:
                async with real() as tx:
                    yield tx  # the batch's records are in, uncommitted
                    inserted.set()
                    await finish.wait()

            state.log.transaction = held_open  # type: ignore[method-assign]
            ingest = asyncio.create_task(usage_api.store_usage(state, [create_record(0, 1.0)]))
            await inserted.wait()
            hold = Hold("req-meanwhile", ORG, KEY, 100_000, MODEL, "default")
            assert await wallet.reserve(hold) is None  # the log's writer is still held
            assert not ingest.done()
            finish.set()
            await ingest
            state.log.transaction = real  # type: ignore[method-assign]
            assert await wallet.owner("cgt-0") == ORG  # the outcome applied once the log was in
            rows = await state.log.fetch_all("SELECT request_id FROM usage")
            assert [row["request_id"] for row in rows] == ["req-0"]
        finally:
            await state.close()

    asyncio.run(asyncio.wait_for(main(), timeout=20))


def test_outcomes_the_edge_applied_itself_take_no_transaction_of_the_main_file(
    tmp_path: Path,
) -> None:
    """The edge assigned or released its creates' holds itself; their records, when they come,
    store the log and leave the main file's writer alone. A hold still waiting for its outcome
    (the edge could not say it) gets it from the record."""

    async def main() -> None:
        state = await ControlState.open(tmp_path / "data")
        try:
            await add_org_and_key(state)
            wallet = DatabaseWallet(state)
            await wallet.grant(ORG, 10_000_000, "top-up", "admin")
            for n in range(4):
                assert (
                    await wallet.reserve(Hold(f"req-{n}", ORG, KEY, 1000, MODEL, "default")) is None
                )
            await wallet.assign("req-0", "cgt-0")
            await wallet.release("req-1")
            refused = create_record(1, 1.0) | {"status": 500, "task_id": None}
            entered: list[str] = []
            real = state.transaction

            def watched():  # type: ignore[no-untyped-def]
                entered.append("main")
                return real()

            state.transaction = watched  # type: ignore[method-assign]
            await usage_api.store_usage(state, [create_record(0, 1.0), refused])
            assert entered == []
            await usage_api.store_usage(state, [create_record(2, 1.0), create_record(3, 1.0)])
            assert entered == ["main"]
            state.transaction = real  # type: ignore[method-assign]
            assert [await wallet.owner(f"cgt-{n}") for n in range(4)] == [ORG, None, ORG, ORG]
            count = await state.log.fetch_one("SELECT COUNT(*) FROM usage")
            assert count is not None and count[0] == 4
        finally:
            await state.close()

    asyncio.run(asyncio.wait_for(main(), timeout=20))


def test_an_outcome_is_judged_on_committed_holds_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The edge's own assignment of a hold is in a transaction still open when the create's
    record comes, and then rolls back: the record, judged on what is committed (the hold still
    held), assigns it, rather than taking the uncommitted assignment for done."""

    class RolledBack(Exception):
        pass

    async def main() -> None:
        state = await ControlState.open(tmp_path / "data")
        try:
            await add_org_and_key(state)
            wallet = DatabaseWallet(state)
            await wallet.grant(ORG, 10_000_000, "top-up", "admin")
            assert await wallet.reserve(Hold("req-0", ORG, KEY, 1000, MODEL, "default")) is None
            assigned, judged = asyncio.Event(), asyncio.Event()
            real_judge = usage_api.still_to_apply

            async def judge(db: Queries, outcomes: list[tuple[str, str | None]]) -> Any:
                pending = await real_judge(db, outcomes)
                judged.set()
                return pending

            monkeypatch.setattr(usage_api, "still_to_apply", judge)

            async def edge_assigns_then_fails() -> None:
                with contextlib.suppress(RolledBack):
                    async with state.transaction() as tx:
                        await assign_hold(tx, "req-0", "cgt-0", 1.0)
                        assigned.set()
                        await judged.wait()
                        raise RolledBack

            edge = asyncio.create_task(edge_assigns_then_fails())
            await assigned.wait()
            await usage_api.store_usage(state, [create_record(0, 1.0)])
            await edge
            assert await wallet.owner("cgt-0") == ORG
        finally:
            await state.close()

    asyncio.run(asyncio.wait_for(main(), timeout=20))


# --- a database of the previous release ----------------------------------------------------


def into_the_main_file(data_dir: Path, copied: float = 0.0) -> int:
    """The previous release's layout: the log's rows (rowids kept) in the main file's tables,
    and no log file; with `copied`, that share of the usage rows also left in a log file, as a
    move cut short by a crash leaves it. Returns the usage rows."""
    log_file = requestlog.log_path(data_dir)
    with contextlib.closing(sqlite3.connect(data_dir / DB_NAME, isolation_level=None)) as db:
        db.execute("ATTACH DATABASE ? AS log", (str(log_file),))
        db.execute("BEGIN")
        for table, fields in requestlog.TABLES.items():
            columns = ", ".join(fields)
            db.execute(
                f"INSERT INTO main.{table} (rowid, {columns}) "
                f"SELECT rowid, {columns} FROM log.{table}"
            )
        rows = db.execute("SELECT COUNT(*) FROM main.usage").fetchone()[0]
        keep = int(rows * copied)
        db.execute(
            "DELETE FROM log.usage WHERE rowid NOT IN "
            "(SELECT rowid FROM log.usage ORDER BY rowid LIMIT ?)",
            (keep,),
        )
        if copied < 1:
            db.execute("DELETE FROM log.security_events")
        if 0 < copied < 1:  # the move makes its indexes once the rows are in
            for name, _ in requestlog.USAGE_INDEXES:
                db.execute(f"DROP INDEX log.{name}")
        db.execute("COMMIT")
    if not copied:
        remove_log_file(data_dir)
    return rows


def remove_log_file(data_dir: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{requestlog.log_path(data_dir)}{suffix}").unlink(missing_ok=True)


async def rowids(db: Queries, table: str) -> list[tuple[int, str]]:
    rows = await db.fetch_all(f"SELECT rowid, request_id FROM {table} ORDER BY rowid")
    return [(row[0], row[1]) for row in rows]


CLOCK = datetime.fromisoformat("2026-11-21T10:00:00Z").timestamp()


@pytest.mark.parametrize("copied", [0.0, 0.5, 1.0])
def test_an_old_database_keeps_every_record_and_its_rollups_stay_exact(
    sqlite_plane: ControlRunner, monkeypatch: pytest.MonkeyPatch, copied: float
) -> None:
    """Records of the previous release, partly folded, in the main file (and, but for the
    first case, some or all of them already copied by a start a crash cut short, half of them
    before it made the indexes): the next start moves every one once, rowids kept, indexes
    made, and every aggregate agrees with the records."""
    monkeypatch.setattr(requestlog, "MOVE_BATCH", 97)  # many batches
    rng = random.Random(25)

    async def body(ctl: Control) -> None:
        keep_the_request_log(ctl)
        begin = CLOCK - 20 * DAY
        # Rowids with a gap, as retention leaves them (long before the windows asked).
        gone = [create_record(n, begin - 100 * DAY) for n in range(200)]
        await usage_api.store_usage(ctl.st, gone)
        await ctl.st.log.execute("DELETE FROM usage WHERE rowid < 200")
        orgs, records, tasks = await folded_and_late(ctl, rng, 2, begin, 10 * DAY, (700, 300))
        events = [
            {
                "kind": "security",
                "request_id": f"sec-{n}",
                "ts": begin + n,
                "client_ip": "203.0.113.7",
                "key_id": None,
                "org_id": orgs[0],
                "reason": "unknown_key",
                "status": 401,
                "route": None,
            }
            for n in range(5)
        ]
        await usage_api.store_usage(ctl.st, events)
        usage_before = await rowids(ctl.st.log, "usage")
        events_before = await rowids(ctl.st.log, "security_events")
        folded = await ctl.st.rollups.watermark()
        assert 0 < folded < usage_before[-1][0]  # some folded, some not
        params = {"from": iso(begin), "to": iso(begin + 11 * DAY), "group_by": "day,org,status"}
        answer = (await ctl.get("/v1/usage", params=params)).json()["items"]
        await ctl.stop()

        assert into_the_main_file(ctl.data_dir, copied) == len(records) + 1
        await ctl.start()
        keep_the_request_log(ctl)
        assert await rowids(ctl.st.log, "usage") == usage_before
        assert await rowids(ctl.st.log, "security_events") == events_before
        for table in requestlog.TABLES:  # emptied in the main file
            assert await ctl.rows(f"SELECT * FROM {table}") == []
        indexes = await ctl.log_rows(
            "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='usage' "
            "AND sql IS NOT NULL ORDER BY name"
        )
        assert [row["name"] for row in indexes] == [n for n, _ in requestlog.USAGE_INDEXES]
        assert await ctl.st.rollups.watermark() == folded
        for group_by in ("day,org,status", "hour,model", "org,endpoint"):
            params = {"from": iso(begin), "to": iso(begin + 11 * DAY), "group_by": group_by}
            got = (await ctl.get("/v1/usage", params=params)).json()["items"]
            same(got, expected(records, tasks, params))
        params = {"from": iso(begin), "to": iso(begin + 11 * DAY), "group_by": "day,org,status"}
        same((await ctl.get("/v1/usage", params=params)).json()["items"], answer)
        await ctl.st.rollups.fold()  # the rest folded once, no record twice
        same((await ctl.get("/v1/usage", params=params)).json()["items"], answer)

        await ctl.restart()  # moved once: a second start changes nothing
        assert await rowids(ctl.st.log, "usage") == usage_before

    sqlite_plane(body)


def test_a_lost_log_file_is_folded_again_from_its_start(sqlite_plane: ControlRunner) -> None:
    """The log file lost (or restored from an older backup): the rollups' watermark comes down
    to the log's newest row, so the records written from then on are folded, once."""

    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        old = [create_record(n, CLOCK - 2 * DAY) | {"org_id": org["id"]} for n in range(30)]
        await usage_api.store_usage(ctl.st, old)
        await ctl.st.rollups.fold()
        assert await ctl.st.rollups.watermark() == 30
        await ctl.stop()
        remove_log_file(ctl.data_dir)
        await ctl.start()
        assert await ctl.st.rollups.watermark() == 0
        new = [create_record(100 + n, CLOCK - DAY) | {"org_id": org["id"]} for n in range(4)]
        await usage_api.store_usage(ctl.st, new)
        await ctl.st.rollups.fold()
        await ctl.st.rollups.fold()
        keep_the_request_log(ctl)
        params = {"from": iso(CLOCK - 3 * DAY), "to": iso(CLOCK)}
        items = (await ctl.get(f"/v1/orgs/{org['id']}/usage", params=params)).json()["items"]
        assert [item["requests"] for item in items] == [34]  # the rollups' 30, the new 4

    sqlite_plane(body)


def test_a_log_file_of_a_newer_release_is_refused_untouched(tmp_path: Path) -> None:
    data = tmp_path / "data"

    async def start() -> None:
        state = await ControlState.open(data)
        await state.close()

    asyncio.run(start())
    path = requestlog.log_path(data)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version={len(requestlog.MIGRATIONS) + 1}")
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match=f"{path}: .*written by a newer release"):
        asyncio.run(start())
    assert path.read_bytes() == before
