"""The dashboard's global pages over the in-process control plane: the overview's ranges and
top tables, the orgs list's spend and requests, the audit log's and security events' filters,
and the system page."""

from __future__ import annotations

import html
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import msgpack
import pytest

from control.aggregates import api as aggregates
from tests.unit.conftest import Control, ControlRunner
from tests.unit.control.test_control_misc import record
from tests.unit.control.test_ui import _login


def _links(page: str) -> list[str]:
    return [html.unescape(href) for href in re.findall(r'href="([^"]+)"', page)]


async def _ship(ctl: Control, records: list[dict[str, Any]]) -> None:
    response = await ctl.post("/v1/edge/usage", content=msgpack.packb(records))
    assert response.status_code == 200, response.text


def test_overview_lists_top_orgs_keys_and_models_with_csv_links(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        big = await ctl.create_org(name="Big Spender")
        small = await ctl.create_org(name="Small Fry")
        now = time.time()
        await _ship(
            ctl,
            [record(f"b{i}", now - 60 - i, big["id"], credits=3_000_000) for i in range(2)]
            + [record(f"s{i}", now - 60 - i, small["id"], credits=0) for i in range(5)],
        )
        await _login(ctl)
        page = (await ctl.get("/ui/", token=None)).text
        orgs_table = page.split('id="top-orgs"')[1].split("</section>")[0]
        assert orgs_table.index("Big Spender") < orgs_table.index("Small Fry")  # by credits
        assert f'href="/ui/orgs/{big["id"]}"' in orgs_table and "6.000000" in orgs_table
        by_requests = (await ctl.get("/ui/?sort=requests", token=None)).text
        orgs_table = by_requests.split('id="top-orgs"')[1].split("</section>")[0]
        assert orgs_table.index("Small Fry") < orgs_table.index("Big Spender")
        assert "seedance-1-0-pro" in page.split('id="top-models"')[1]
        assert "AAAAAAAAAAAAAAAA" in page.split('id="top-keys"')[1]
        downloads = [link for link in _links(page) if link.startswith("/ui/download")]
        assert any("group_by=org%2Ckey" in link for link in downloads)
        csv = await ctl.get(next(link for link in downloads if "group_by=model" in link))
        assert csv.status_code == 200 and "seedance-1-0-pro" in csv.text
        # The tables show the top ten, as their CSV lists every group, in the tables' order.
        others = [await ctl.create_org(name=f"Other {i}") for i in range(10)]
        await _ship(ctl, [record(f"o{i}", now - 30, o["id"]) for i, o in enumerate(others)])
        by_requests = (await ctl.get("/ui/?sort=requests", token=None)).text
        orgs_table = by_requests.split('id="top-orgs"')[1].split("</section>")[0]
        assert orgs_table.count("<tr>") == 1 + 10  # the header and ten of twelve
        assert orgs_table.index("Small Fry") < orgs_table.index("Big Spender")
        csv_link = next(link for link in _links(orgs_table) if link.startswith("/ui/download"))
        assert "sort=-requests" in csv_link
        csv_lines = (await ctl.get(csv_link)).text.strip().splitlines()
        assert len(csv_lines) == 1 + 12 and csv_lines[1].startswith(small["id"])

    control_plane(body)


def test_overview_custom_range_is_validated_in_words(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        await _login(ctl)
        today = datetime.now(UTC).date()
        week = {"range": "custom", "from": str(today - timedelta(days=6)), "to": str(today)}
        shown = await ctl.get("/ui/", params=week, token=None)
        assert shown.status_code == 200 and 'id="range-shown"' in shown.text
        start = f"{today - timedelta(days=6)}T00:00:00Z"
        assert f'datetime="{start}"' in shown.text and "one hour" in shown.text
        data = await ctl.get("/ui/overview.json", params=week, token=None)
        assert data.status_code == 200 and data.json()["unit"] == "hour"
        long = week | {"from": str(today - timedelta(days=60))}
        assert (await ctl.get("/ui/overview.json", params=long, token=None)).json()["unit"] == "day"
        cases = {
            "The end date must be on or after the start date.": week
            | {"from": str(today), "to": str(today - timedelta(days=1))},
            "A range may span at most 400 days.": week | {"from": "2020-01-01"},
            "Pick both a start date and an end date.": {"range": "custom", "from": str(today)},
            "The start date must be a date such as 2026-01-31.": week | {"from": "31/01/2026"},
        }
        for words, params in cases.items():
            page = await ctl.get("/ui/", params=params, token=None)
            assert page.status_code == 200 and words in html.unescape(page.text), words
            assert 'id="charts"' not in page.text
            refused = await ctl.get("/ui/overview.json", params=params, token=None)
            assert refused.status_code == 400 and refused.json()["error"] == words

    control_plane(body)


def test_orgs_list_shows_spend_this_month_and_requests_today_in_one_aggregate(
    control_plane: ControlRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(ctl: Control) -> None:
        busy = await ctl.create_org(name="Busy")
        idle = await ctl.create_org(name="Idle")
        now = datetime.now(UTC)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
        records = [
            record(f"t{i}", time.time() - 1 - i, busy["id"], credits=1_000_000) for i in range(3)
        ]
        records.append(record("last-month", month - 3600, busy["id"], credits=50_000_000))
        earlier = midnight > month
        if earlier:  # not on the 1st: a request this month before today
            records.append(record("earlier", month + 60, busy["id"], credits=2_000_000))
        await _ship(ctl, records)
        calls: list[Any] = []
        real = aggregates.all_usage

        async def counted(request: Any) -> Any:
            calls.append(dict(request.query_params))
            return await real(request)

        monkeypatch.setattr(aggregates, "all_usage", counted)
        await _login(ctl)
        page = (await ctl.get("/ui/orgs", token=None)).text
        assert len(calls) == 1 and set(calls[0]["org"].split(",")) == {busy["id"], idle["id"]}
        row = page.split(f'href="/ui/orgs/{busy["id"]}"')[1].split("</tr>")[0]
        spend = "5.000000" if earlier else "3.000000"
        assert f'<td class="num spend">{spend}</td>' in row
        assert '<td class="num today">3</td>' in row
        idle_row = page.split(f'href="/ui/orgs/{idle["id"]}"')[1].split("</tr>")[0]
        assert '<td class="num spend">0.000000</td>' in idle_row
        orgs_csv = next(link for link in _links(page) if link.endswith("path=%2Fv1%2Forgs"))
        csv = await ctl.get(orgs_csv, token=None)
        assert csv.status_code == 200 and "Busy" in csv.text and "Idle" in csv.text

    control_plane(body)


def test_audit_page_filters_and_keeps_them_in_pager_and_csv(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        orgs = [await ctl.create_org(name=f"Audited {i}") for i in range(27)]
        key = await ctl.create_key(orgs[0]["id"])
        await _login(ctl)
        page = (await ctl.get("/ui/audit", params={"action": "key.create"}, token=None)).text
        assert key["id"] in page and "org.create" not in page.split("<table")[1]
        many = (await ctl.get("/ui/audit", params={"action": "org.create"}, token=None)).text
        nxt = next(link for link in _links(many) if "cursor=" in link)
        assert "action=org.create" in nxt
        second = (await ctl.get(nxt, token=None)).text
        assert second.split("<table")[1].split("</table>")[0].count("org.create") == 2  # 25 + 2
        csv_link = next(link for link in _links(many) if link.startswith("/ui/download"))
        assert "action=org.create" in csv_link
        csv = await ctl.get(csv_link, token=None)
        assert csv.text.count("org.create") == 27 and "key.create" not in csv.text
        today = datetime.now(UTC).date()
        none = await ctl.get("/ui/audit", params={"to": str(today - timedelta(days=2))}, token=None)
        assert "No admin action matches these filters." in none.text
        bad = await ctl.get(
            "/ui/audit", params={"from": str(today), "to": "2000-01-01"}, token=None
        )
        assert bad.status_code == 200
        assert "The end date must be on or after the start date." in bad.text

    control_plane(body)


def test_security_page_lists_and_filters_events(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        now = time.time()
        events = [
            {
                "kind": "security",
                "request_id": f"sec-{i}",
                "ts": now - i,
                "client_ip": ip,
                "key_id": None,
                "org_id": None,
                "reason": reason,
                "status": 401,
                "route": "GET /api/v3/contents/generations/tasks",
            }
            for i, (ip, reason) in enumerate(
                [("203.0.113.7", "unknown_key"), ("198.51.100.9", "malformed_key")]
            )
        ]
        response = await ctl.post("/v1/edge/usage", content=msgpack.packb(events))
        if response.status_code != 200:
            pytest.fail(response.text)
        await _login(ctl)
        page = (await ctl.get("/ui/security", token=None)).text
        assert "sec-0" in page and "sec-1" in page and "Security events" in page
        only = (await ctl.get("/ui/security", params={"reason": "malformed_key"}, token=None)).text
        assert "sec-1" in only and "sec-0" not in only
        csv_link = next(link for link in _links(only) if link.startswith("/ui/download"))
        csv = await ctl.get(csv_link, token=None)
        assert "sec-1" in csv.text and "sec-0" not in csv.text
        bad = await ctl.get("/ui/security", params={"client_ip": "nope"}, token=None)
        assert "`client_ip` must be an IP address." in html.unescape(bad.text)

    control_plane(body)


def test_system_page_shows_edges_redis_and_retention_to_a_read_only_token(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        headers = {
            "X-Edge-Id": "edge-7:99",
            "X-Edge-Snapshot-Version": "0",
            "X-Edge-Spool-Backlog": "4",
            "X-Edge-Counters": "redis ok",
        }
        assert (await ctl.get("/v1/edge/snapshot", headers=headers)).status_code == 200
        reader = await ctl.create_admin_token(["read"])
        await _login(ctl, reader["token"])
        page = (await ctl.get("/ui/system", token=None)).text
        edge_row = page.split("edge-7:99")[1].split("</tr>")[0]
        assert "(behind)" in edge_row and ">4</td>" in edge_row and "redis ok" in edge_row
        assert "Answering (1 edge on it)." in page
        assert "Has not run in this process yet." in page
        assert "<form" not in page.split("<main>")[1]  # nothing to change here
        assert 'href="/ui/system" aria-current="page"' in page
        assert ctl.app is not None
        await ctl.app.state.retention.scheduled_run()
        after = (await ctl.get("/ui/system", token=None)).text
        assert "Nothing was due: the last run deleted no rows." in after
        assert "Last run <time" in after and "rows deleted" in after
        # The request log's day partitions, on PostgreSQL only (SQLite's log is a file).
        on_postgres = ctl.database_url is not None
        assert ('id="log-partitions"' in after) is on_postgres
        if on_postgres:
            row = after.split('data-table="security_events"')[1].split("</tr>")[0]
            assert "<code>security_events</code>" in row and ">0</td>" in row

    control_plane(body)
