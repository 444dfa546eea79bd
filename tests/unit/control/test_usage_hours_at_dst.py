"""Hourly usage in a zone whose clocks go back: the local hour that happens twice is two rows,
in time order, from the lean cubes and the full cube alike, folded or not.

The case a run of test_usage_lean.py first failed on: on 2026-11-01 New York's clocks went back
from 02:00 EDT to 01:00 EST, so 01:00-02:00 local was 05:00-06:00 UTC and again 06:00-07:00
UTC. Rows were keyed by (local hour, UTC offset) and ordered by that key, which put the second
01:00 (offset -5 h) before the first (-4 h)."""

from __future__ import annotations

import random

import pytest

from control.jobs.retention import Periods, Retention
from tests.unit.conftest import Control, ControlRunner
from tests.unit.control.test_usage_aggregates import (
    expected,
    fold,
    insert,
    make_records,
    same,
    without_percentiles,
)
from tests.unit.control.test_usage_lean import at

# (zone, window from, to, the hourly rows' starts in UTC)
CASES = [
    (
        "America/New_York",
        "2026-11-01T04:00:00Z",
        "2026-11-01T08:00:00Z",
        ["04:00", "05:00", "06:00", "07:00"],  # 00:00 EDT, 01:00 EDT, 01:00 EST, 02:00 EST
    ),
    (  # from 02:00 LHDT (+11) back to 01:30 LHST (+10:30)
        "Australia/Lord_Howe",
        "2026-04-04T13:00:00Z",
        "2026-04-04T16:30:00Z",
        ["13:00", "14:00", "14:30", "15:30"],  # 00:00, 01:00 LHDT, 01:00, 02:00 LHST
    ),
]


@pytest.mark.parametrize(("zone", "start", "end", "starts"), CASES)
@pytest.mark.parametrize("percentiles", ["false", "true"])
def test_the_hour_the_clocks_go_back_is_two_rows_in_time_order(
    control_plane: ControlRunner,
    zone: str,
    start: str,
    end: str,
    starts: list[str],
    percentiles: str,
) -> None:
    rng = random.Random(3)

    async def body(ctl: Control) -> None:
        # the request log kept back to 2026, whenever the test runs
        ctl.app.state.retention = Retention(ctl.st, Periods(api_logs_days=100 * 365))  # type: ignore[union-attr]
        org = (await ctl.create_org())["id"]
        low, span = at(start), at(end) - at(start)
        folded, folded_tasks = make_records(rng, [org], low, span, 60, "f")
        await insert(ctl, folded, folded_tasks)
        await fold(ctl)
        late, late_tasks = make_records(rng, [org], low, span, 30, "l")
        late = [(f"late-{r[0]}", *r[1:]) for r in late]
        await insert(ctl, late, late_tasks)  # not folded: read from the request log
        records, tasks = [r for r in folded + late if r[2] == org], folded_tasks | late_tasks
        for group_by in ("hour", "hour,key"):
            params = {"from": start, "to": end, "tz": zone, "group_by": group_by}
            response = await ctl.get(
                f"/v1/orgs/{org}/usage", params=params | {"percentiles": percentiles}
            )
            assert response.status_code == 200, response.text
            rows = response.json()["items"]
            seen = list(dict.fromkeys(row["start"] for row in rows))
            assert seen == [f"{start[:10]}T{hour}:00.000Z" for hour in starts], seen
            want = expected(records, tasks, params, org)
            same(rows, want if percentiles == "true" else without_percentiles(want))

    control_plane(body)
