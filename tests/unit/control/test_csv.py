"""CSV from every list that offers it (`?format=csv` or `Accept: text/csv`): parsed back with the
csv module, it holds the same records as the JSON pages, every page of them, with a header
row naming UTC times as such, and formula-like text defused with a leading quote."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

from control.api.csvout import cell
from control.api.security import store_events
from tests.unit.conftest import Control, ControlRunner, assert_error

DANGEROUS = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "a,b", 'say "hi"']


def parse(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv"), response.headers
    text = response.text
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")  # RFC 4180 lines
    return list(csv.DictReader(io.StringIO(text, newline="")))


async def every_json_item(ctl: Control, path: str, **params: Any) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        query = params | ({"cursor": cursor} if cursor else {})
        page = (await ctl.get(path, params=query)).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def as_cells(item: dict[str, Any], columns: list[str]) -> dict[str, str]:
    names = [c.removesuffix("_utc") if c.removesuffix("_utc") in item else c for c in columns]
    return {column: cell(item.get(name)) for column, name in zip(columns, names, strict=True)}


async def seed(ctl: Control) -> dict[str, str]:
    org = await ctl.create_org()
    key = await ctl.create_key(org["id"])
    for n, reason in enumerate(DANGEROUS):
        grant = await ctl.post(
            f"/v1/orgs/{org['id']}/credits", json={"amount": 1000 + n, "reason": reason}
        )
        assert grant.status_code == 201, grant.text
    now = time.time()
    rows = []
    for n in range(7):
        rows.append(
            (
                f"req-{n}",
                now - n,
                org["id"],
                key["id"],
                "GET",
                "GET /x",
                200,
                1.5,
                None,
                10,
                20,
                0,
                DANGEROUS[n % len(DANGEROUS)],
                None,
            )
        )
    await ctl.st.log.executemany(
        "INSERT INTO usage (request_id, ts, org_id, key_id, method, route, status, latency_ms, "
        "upstream_latency_ms, bytes_in, bytes_out, credits, model, task_id) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
    for n in range(5):
        await ctl.st.db.execute(
            "INSERT INTO tasks (id, org_id, key_id, model, status, reserved, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, 'queued', 10, ?, ?)",
            (f"cgt-{n}", org["id"], key["id"], DANGEROUS[n], now - n, now - n),
        )
    events = [
        {
            "kind": "security",
            "request_id": f"sec-{n}",
            "ts": now - n,
            "client_ip": "203.0.113.9",
            "key_id": key["id"],
            "org_id": org["id"],
            "reason": "wrong_secret",
            "status": 401,
            "route": "=cmd|' /C calc'!A0",
        }
        for n in range(4)
    ]
    await store_events(ctl.st.log, events)
    return {"org": org["id"], "key": key["id"]}


def test_every_listed_endpoint_answers_csv_parsed_back_equal_to_json(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        ids = await seed(ctl)
        org = ids["org"]
        second = await ctl.create_key(org, name="=second", allowed_ips=["203.0.113.0/24"])
        lists = [
            (f"/v1/orgs/{org}/keys", "created_at_utc", 2),
            (f"/v1/orgs/{org}/requests", "ts_utc", 7),
            (f"/v1/orgs/{org}/ledger", "created_at_utc", len(DANGEROUS)),
            (f"/v1/orgs/{org}/tasks", "created_at_utc", 5),
            ("/v1/audit", "ts_utc", None),
            ("/v1/security-events", "ts_utc", 4),
        ]
        for path, time_column, expected in lists:
            items = await every_json_item(ctl, path, limit=2)
            if expected is not None:
                assert len(items) == expected, (path, len(items))
            # Pages of 2 are read as the CSV goes: every item arrives, in the same order.
            by_param = parse(await ctl.get(path, params={"format": "csv", "limit": 2}))
            by_accept = parse(
                await ctl.get(path, params={"limit": 3}, headers={"Accept": "text/csv"})
            )
            assert by_param == by_accept
            columns = list(by_param[0].keys())
            assert time_column in columns and "id" in columns, columns
            assert not any(c in ("ts", "created_at") for c in columns)
            assert by_param == [as_cells(item, columns) for item in items], path
            for row in by_param:  # times are UTC, as the header says
                assert row[time_column].endswith("Z"), row

        requests = parse(await ctl.get(f"/v1/orgs/{org}/requests?format=csv"))
        models = {row["model"] for row in requests}
        assert '\'=HYPERLINK("http://x")' in models and "'+1+1" in models
        assert "'-2+3" in models and "'@SUM(A1)" in models
        assert "a,b" in models and 'say "hi"' in models  # quoted by the writer, read back
        ledger = parse(await ctl.get(f"/v1/orgs/{org}/ledger?format=csv"))
        assert {row["reason"] for row in ledger} >= {'\'=HYPERLINK("http://x")', "'@SUM(A1)"}
        assert all(row["amount"].lstrip("-").isdigit() for row in ledger)  # numbers untouched
        keys_csv = await ctl.get(f"/v1/orgs/{org}/keys?format=csv")
        assert second["key"] not in keys_csv.text  # never a secret
        keys = parse(keys_csv)
        assert [row["name"] for row in keys] == ["ci", "'=second"]
        assert keys[1]["allowed_ips"] == '["203.0.113.0/24"]'
        assert "previous_secret_valid_until_utc" in keys[1]
        events = parse(await ctl.get("/v1/security-events?format=csv"))
        assert {row["route"] for row in events} == {"'=cmd|' /C calc'!A0"}

        # ?format=json wins over Accept; a bad format is refused in the envelope.
        chosen = await ctl.get(f"/v1/orgs/{org}/tasks?format=json", headers={"Accept": "text/csv"})
        assert chosen.headers["content-type"].startswith("application/json")
        assert_error(await ctl.get(f"/v1/orgs/{org}/tasks?format=xml"), 400, "InvalidParameter")
        bad = await ctl.get(f"/v1/orgs/{org}/requests?format=csv&from=nonsense")
        assert_error(bad, 400, "InvalidParameter")

    control_plane(body)


def test_usage_aggregates_as_csv(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        ids = await seed(ctl)
        params = {"group_by": "day,model", "tz": "Europe/Paris"}
        path = f"/v1/orgs/{ids['org']}/usage"
        rows = (await ctl.get(path, params=params)).json()["items"]
        table = parse(await ctl.get(path, params=params | {"format": "csv"}))
        columns = list(table[0].keys())
        assert columns[:3] == ["start_utc", "end_utc", "model"]
        assert "latency_p99_ms" in columns and "credits_charged" in columns
        assert table == [as_cells(row, columns) for row in rows]
        assert sum(int(row["requests"]) for row in table) == 7
        everyone = parse(await ctl.get("/v1/usage?group_by=org", headers={"Accept": "text/csv"}))
        assert [row["org_id"] for row in everyone] == [ids["org"]]

    control_plane(body)
