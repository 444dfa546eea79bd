"""Usage aggregates with `percentiles=false`, answered from the lean cubes (by org, key and
model, per 15-minute slot, per UTC day, and running totals at UTC midnights): every row agrees
with the request log over random windows, groupings and zones (DST, half-hour and 45-minute
offsets), after folds in several batches with late arrivals; a purge leaves them in step with
the full cube; and the migration fills them as folding would."""

from __future__ import annotations

import random
import time
from datetime import datetime
from typing import Any

import pytest

from control.aggregates import lean, rollup
from control.jobs.retention import DAY
from control.store.database import Queries
from tests.unit.conftest import Control, ControlRunner, assert_error
from tests.unit.control.test_usage_aggregates import (
    ZONES,
    expected,
    fold,
    insert,
    iso,
    keep_the_request_log,
    make_records,
    rfc,
    same,
    without_percentiles,
)

GROUPINGS = [
    (None, ["org", "key", "model"]),
    (None, []),
    (None, ["model"]),
    ("day", ["org"]),
    ("day", ["key", "model"]),
    ("month", ["org", "model"]),
    ("month", []),
    ("hour", ["key"]),
]


async def lean_answer(ctl: Control, org: str | None, params: dict[str, str]) -> dict[str, Any]:
    path = "/v1/usage" if org is None else f"/v1/orgs/{org}/usage"
    response = await ctl.get(path, params=params | {"percentiles": "false"})
    assert response.status_code == 200, response.text
    return response.json()


# When the test's clock stands (the windows are drawn around it), with the seed of its draws:
# every run of a case reads the same records over the same windows. Each case says why it is
# here; the first is the instant a run first failed (rows of the hour the clocks go back in
# New York came out in the wrong order, see test_usage_hours_at_dst.py).
CLOCKS = [
    ("2026-12-02T19:46:54Z", 20261130),  # New York's clocks go back in the hourly windows
    ("2026-05-20T00:00:00Z", 20261130),  # on a UTC midnight; Lord Howe's clocks go back
    ("2026-04-01T12:07:30Z", 7),  # New York's clocks go forward; inside a slot
    ("2026-08-15T23:59:59Z", 20261129),  # a second before midnight, far from any change
]


def at(clock: str) -> float:
    return datetime.fromisoformat(clock).timestamp()


@pytest.mark.parametrize(("clock", "seed"), CLOCKS)
def test_lean_aggregates_agree_with_the_request_log(
    control_plane: ControlRunner, clock: str, seed: int
) -> None:
    agree_with_the_request_log(control_plane, at(clock), seed)


def agree_with_the_request_log(control_plane: ControlRunner, now: float, seed: int) -> None:
    """Records over the 60 days before `now`, folded in batches and some not, and 48 random
    windows, groupings and zones drawn from `seed`: every answer agrees with the oracle."""
    rng = random.Random(seed)

    async def body(ctl: Control) -> None:
        keep_the_request_log(ctl)
        orgs = [(await ctl.create_org(name=f"org {i}"))["id"] for i in range(3)]
        begin = now - 60 * DAY  # spans a month's start whatever the clock
        records: list[tuple] = []
        tasks: dict[str, tuple[str, int]] = {}
        # Folded in turn: the older half, then later days (the running totals carried
        # forward), then late arrivals all over (added to every later midnight).
        for n, (low, span, count) in enumerate(
            [(begin, 25 * DAY, 900), (begin + 25 * DAY, 25 * DAY, 900), (begin, 50 * DAY, 500)]
        ):
            batch, batch_tasks = make_records(rng, orgs, low, span, count, f"b{n}")
            batch = [(f"{n}-{r[0]}", *r[1:]) for r in batch]
            await insert(ctl, batch, batch_tasks)
            await fold(ctl)
            records, tasks = records + batch, tasks | batch_tasks
        unfolded, more_tasks = make_records(rng, orgs, begin, 50 * DAY, 300, "u")
        unfolded = [(f"u-{r[0]}", *r[1:]) for r in unfolded]
        await insert(ctl, unfolded, more_tasks)  # not folded: read from the log
        records, tasks = records + unfolded, tasks | more_tasks

        for case in range(48):
            unit, dims = GROUPINGS[case % len(GROUPINGS)]
            tz = ZONES[case % len(ZONES)]
            start = begin + rng.random() * 20 * DAY
            end = start + DAY + rng.random() * 35 * DAY
            if case % 12 == 5:  # from before the first day of the running totals
                start = begin - 3 * DAY - rng.random() * DAY
            if case % 4 == 0:  # whole UTC days: the running totals at both ends
                start, end = start // DAY * DAY, end // DAY * DAY + DAY
            if case % 12 == 1:  # past the newest midnight of the running totals
                end = now + 3 * DAY
            org = rng.choice([*orgs, None])
            group_by = ",".join([*([unit] if unit else []), *dims])
            params = {"from": iso(start), "to": iso(end), "tz": tz, "group_by": group_by}
            answer = await lean_answer(ctl, org, params)
            assert answer["from"] == rfc(start) and answer["to"] == rfc(end)
            want = expected(records, tasks, params, org)
            assert want, params
            same(answer["items"], without_percentiles(want))

        # Groupings the lean cubes do not hold are answered as before, percentiles left out.
        params = {"from": iso(begin), "to": iso(now), "group_by": "day,status"}
        full = (await ctl.get("/v1/usage", params=params)).json()["items"]
        same((await lean_answer(ctl, None, params))["items"], without_percentiles(full))
        assert any(row["latency_p50_ms"] is not None for row in full)
        bad = await ctl.get("/v1/usage", params={"percentiles": "no"})
        assert_error(bad, 400, "InvalidParameter")

    control_plane(body)


def test_a_purge_leaves_the_lean_cubes_in_step_with_the_full_cube(
    control_plane: ControlRunner,
) -> None:
    rng = random.Random(11)

    async def body(ctl: Control) -> None:
        org = (await ctl.create_org())["id"]
        now = time.time()
        begin = now - 30 * DAY
        records, tasks = make_records(rng, [org], begin, 29 * DAY, 1200)
        await insert(ctl, records, tasks)
        await fold(ctl)
        cutoff = begin + 10.3 * DAY  # inside a day: that day's daily rows go whole
        counts = await ctl.st.rollups.purge(cutoff)
        assert counts[lean.RUNNING] > 0 and counts[lean.LEAN] > 0
        for start, end in [
            (begin - DAY, now),
            (begin // DAY * DAY, (begin + 20 * DAY) // DAY * DAY),
            (cutoff // DAY * DAY + 2 * DAY, now // DAY * DAY),
        ]:
            params = {"from": iso(start), "to": iso(end)}
            path = f"/v1/orgs/{org}/usage"
            full = (await ctl.get(path, params=params | {"group_by": "key,model"})).json()
            lean_rows = (await lean_answer(ctl, org, params | {"group_by": "key,model"}))["items"]
            same(lean_rows, without_percentiles(full["items"]))
            assert lean_rows, params

    control_plane(body)


def test_the_migration_fills_the_lean_cubes_as_folding_does(
    control_plane: ControlRunner,
) -> None:
    rng = random.Random(5)

    async def body(ctl: Control) -> None:
        orgs = [(await ctl.create_org(name=f"o{i}"))["id"] for i in range(2)]
        records, tasks = make_records(rng, orgs, time.time() - 40 * DAY, 39 * DAY, 1500)
        await insert(ctl, records, tasks)
        await fold(ctl)
        db = await ctl.st.rollups.open()
        folded = {table: await _table(db, table) for table in lean.TABLES}
        assert all(folded.values())
        drops = "".join(f"DROP TABLE {table};\n" for table in lean.TABLES)
        script = drops + lean.migration(db.dialect)
        async with db.transaction() as tx:
            for statement in script.split(";\n"):
                if statement.strip():
                    await tx.execute(statement)
        for table in lean.TABLES:
            assert await _table(db, table) == folded[table], table

    control_plane(body)


async def _table(db: Queries, table: str) -> list[tuple]:
    """The table's rows, latency sums rounded (sums of floats in another order)."""
    position = 4 + rollup.COUNTERS.index("latency_sum")
    rows = await db.fetch_all(f"SELECT * FROM {table} ORDER BY slot, org_id, key_id, model")
    return [(*row[:position], round(row[position], 6), *row[position + 1 :]) for row in rows]
