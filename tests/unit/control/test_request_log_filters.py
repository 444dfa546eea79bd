"""The request log's filters over the admin API: key, status (a code or a class), model and
route, with the time window and the cursor; bad values refused; each read off an index."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from starlette.datastructures import QueryParams

from control.api.usage import request_filters, store_usage
from control.store import requestlog
from control.store.database import Queries
from tests.unit.conftest import Control, ControlRunner, assert_error
from tests.unit.control.test_control_misc import T0, all_requests, iso, record


async def seed_filterable_log(ctl: Control) -> dict[str, Any]:
    org = await ctl.create_org(name="Filtered")
    other_key, tasks = "BBBBBBBBBBBBBBBB", "POST /api/v3/contents/generations/tasks"
    one_task = "GET /api/v3/contents/generations/tasks/{id}"
    await store_usage(
        ctl.st,
        [
            record("req_f1", T0 + 1, org["id"], route=tasks),
            record("req_f2", T0 + 2, org["id"], route=one_task, status=404, model=None),
            record("req_f3", T0 + 3, org["id"], key_id=other_key, route=tasks, status=402),
            record("req_f4", T0 + 4, org["id"], route=tasks, status=502, model="seedance-lite"),
            record("req_f5", T0 + 5, org["id"], key_id=other_key, route=one_task, status=201),
            record("req_other_org", T0 + 6, None, route=tasks),
        ],
    )
    return org


def test_request_log_filters_by_key_status_model_and_route(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await seed_filterable_log(ctl)
        cases: list[tuple[dict[str, Any], list[str]]] = [
            ({"key_id": "BBBBBBBBBBBBBBBB"}, ["req_f5", "req_f3"]),
            ({"status": "404"}, ["req_f2"]),
            ({"status": "4xx"}, ["req_f3", "req_f2"]),
            ({"status": "2xx"}, ["req_f5", "req_f1"]),
            ({"status": "5xx"}, ["req_f4"]),
            ({"status": "3xx"}, []),
            ({"model": "seedance-lite"}, ["req_f4"]),
            ({"route": "GET /api/v3/contents/generations/tasks/{id}"}, ["req_f5", "req_f2"]),
            ({"key_id": "AAAAAAAAAAAAAAAA", "status": "4xx"}, ["req_f2"]),
            ({"status": "2xx", "from": iso(T0 + 2), "to": iso(T0 + 6)}, ["req_f5"]),
        ]
        for params, expected in cases:
            ids, _ = await all_requests(ctl, org["id"], **params)
            assert ids == expected, params
        # Filters hold across pages, and in the CSV.
        ids, pages = await all_requests(ctl, org["id"], status="4xx", limit=1)
        assert ids == ["req_f3", "req_f2"] and pages == 2
        csv = await ctl.get(
            f"/v1/orgs/{org['id']}/requests", params={"format": "csv", "status": "5xx"}
        )
        assert csv.status_code == 200 and "req_f4" in csv.text
        assert "req_f1" not in csv.text and "req_f2" not in csv.text

    control_plane(body)


def test_request_log_refuses_bad_filters(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await seed_filterable_log(ctl)
        path = f"/v1/orgs/{org['id']}/requests"
        for params in [
            {"status": "600"},
            {"status": "4x"},
            {"status": "error"},
            {"status": "40"},
            {"key_id": "short"},
            {"key_id": "AAAAAAAAAAAAAAA!"},
            {"model": ""},
            {"model": "m" * 201},
            {"route": "GET /\x00"},
            {"route": "GET /\n"},
        ]:
            answer = await ctl.get(path, params=params)
            assert_error(answer, 400, "InvalidParameter")
            assert next(iter(params)) in answer.json()["error"]["message"], params
        csv = await ctl.get(path, params={"format": "csv", "status": "nope"})
        assert_error(csv, 400, "InvalidParameter")

    control_plane(body)


def test_each_request_log_filter_reads_an_index_in_time_order(tmp_path: Path) -> None:
    """A filtered page over millions of rows must be a seek: each filter's query is served by
    an index that starts with (org_id, the filter) and, for an equality, needs no sort. The
    plans are SQLite's: read from a request log file of its own, whichever backend the suite
    runs on (PostgreSQL's planner picks by its statistics, not by the query alone)."""

    async def main() -> None:
        log = await requestlog.connect(requestlog.log_path(tmp_path))
        try:
            await each_filter_reads_an_index(log)
        finally:
            await log.close()

    asyncio.run(main())


async def each_filter_reads_an_index(log: Queries) -> None:
    cases = {
        "key_id": ("AAAAAAAAAAAAAAAA", "usage_org_key_ts", False),
        "status": ("404", "usage_org_status_ts", False),
        "model": ("seedance-1-0-pro", "usage_org_model_ts", False),
        "route": ("GET /x", "usage_org_route_ts", False),
        "status ": ("5xx", "usage_org_status_ts", True),  # errors: few, sorted
        " status": ("2xx", "usage_org_ts", False),  # successes: most rows, by time
    }
    for name, (value, index, sorts) in cases.items():
        clauses, args = request_filters(QueryParams({name.strip(): value}))
        where = " AND ".join(["org_id=?", *clauses])
        sql = (
            f"EXPLAIN QUERY PLAN SELECT * FROM usage WHERE {where} "
            "ORDER BY ts DESC, request_id DESC LIMIT 26"
        )
        plan = " | ".join(row["detail"] for row in await log.fetch_all(sql, "org_x", *args))
        assert f"USING INDEX {index} (org_id=?" in plan, (name, plan)
        assert ("TEMP B-TREE" in plan) is sorts, (name, plan)
