"""What the dashboard's global pages read: the audit log's filters, `/v1/usage?org=…`, and
`GET /v1/system` (edges as they report themselves, Redis as they see it, retention's last run,
the request log's day partitions on PostgreSQL)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import msgpack

from control.api.usage import store_usage
from control.jobs.retention import Retention
from control.store.edges import CONNECTED_SECONDS, EdgeRegistry
from proxy.core.usage_records import FIELDS
from proxy.limits.resilient import Breaker
from proxy.remote import ControlClient, report_headers
from proxy.services import EDGE_ID, EdgeServices
from tests.unit.conftest import Control, ControlRunner, assert_error
from tests.unit.control.test_control_misc import iso, record


async def _audit_ids(ctl: Control, **params: Any) -> list[str]:
    response = await ctl.get("/v1/audit", params=params)
    assert response.status_code == 200, response.text
    return [entry["target"] for entry in response.json()["items"]]


def test_audit_filters_narrow_by_action_actor_target_and_time(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        first = await ctl.create_org(name="First")
        second = await ctl.create_org(name="Second")
        key = await ctl.create_key(first["id"])
        assert (await ctl.delete(f"/v1/keys/{key['id']}")).status_code == 200
        assert await _audit_ids(ctl, action="org.create") == [second["id"], first["id"]]
        assert await _audit_ids(ctl, target=first["id"]) == [first["id"]]
        assert await _audit_ids(ctl, action="key.revoke", target=key["id"]) == [key["id"]]
        assert await _audit_ids(ctl, actor="nobody") == []
        actor = (await ctl.get("/v1/audit")).json()["items"][0]["actor"]
        assert len(await _audit_ids(ctl, actor=actor)) == 4
        now = time.time()
        assert len(await _audit_ids(ctl, **{"from": iso(now - 60), "to": iso(now + 60)})) == 4
        assert await _audit_ids(ctl, to=iso(now - 60)) == []
        # Paging keeps the filter: two pages of one org.create each.
        page = (await ctl.get("/v1/audit", params={"action": "org.create", "limit": 1})).json()
        assert [e["target"] for e in page["items"]] == [second["id"]]
        params = {"action": "org.create", "limit": 1, "cursor": page["next_cursor"]}
        rest = (await ctl.get("/v1/audit", params=params)).json()
        assert [e["target"] for e in rest["items"]] == [first["id"]]
        csv = await ctl.get("/v1/audit", params={"action": "org.create", "format": "csv"})
        assert csv.status_code == 200 and csv.text.count("org.create") == 2
        assert "key.revoke" not in csv.text
        for bad in (
            {"action": ""},
            {"actor": "x" * 201},
            {"target": "a\x00b"},
            {"from": "yesterday"},
            {"to": "2026-01-01T00:00:00"},  # no zone
            {"from": iso(now), "to": iso(now - 1)},
        ):
            assert_error(await ctl.get("/v1/audit", params=bad), 400, "InvalidParameter")

    control_plane(body)


def test_all_usage_counts_only_the_named_orgs(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        orgs = [(await ctl.create_org(name=f"O{i}"))["id"] for i in range(3)]
        now = time.time()
        batch = [record(f"r-{i}", now - 100 - i, orgs[i % 3]) for i in range(9)]
        assert (await ctl.post("/v1/edge/usage", content=msgpack.packb(batch))).status_code == 200
        window = {"from": iso(now - 3600), "to": iso(now + 60)}
        both = ",".join(orgs[:2])
        grouped = await ctl.get("/v1/usage", params=window | {"group_by": "org", "org": both})
        assert grouped.status_code == 200, grouped.text
        assert {row["org_id"]: row["requests"] for row in grouped.json()["items"]} == {
            orgs[0]: 3,
            orgs[1]: 3,
        }
        repeated = [("org", orgs[2]), ("org", orgs[0]), *window.items()]
        total = (await ctl.get("/v1/usage", params=repeated)).json()["items"]
        assert [row["requests"] for row in total] == [6]
        everyone = (await ctl.get("/v1/usage", params=window)).json()["items"]
        assert [row["requests"] for row in everyone] == [9]
        for bad in ("", "acme", "org_x;DROP", ",".join(f"org_{i}" for i in range(1001))):
            response = await ctl.get("/v1/usage", params=window | {"org": bad})
            assert_error(response, 400, "InvalidParameter")

    control_plane(body)


def _app_edges(ctl: Control) -> EdgeRegistry:
    assert ctl.app is not None
    return ctl.app.state.edges


def test_system_lists_edges_by_their_reports_and_older_edges_by_address(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        version = ctl.version
        reported = {
            "X-Edge-Id": "edge-a:41",
            "X-Edge-Snapshot-Version": str(version),
            "X-Edge-Spool-Backlog": "3",
            "X-Edge-Counters": "redis unreachable",
        }
        snap = await ctl.get("/v1/edge/snapshot", headers=reported)
        assert snap.status_code == 200
        # An older edge sends no headers: it is listed by its address and the `after` it sent.
        old = await ctl.get("/v1/edge/snapshot", params={"after": 0})
        assert old.status_code == 200
        system = await ctl.get("/v1/system")
        assert system.status_code == 200, system.text
        answer = system.json()
        assert answer["snapshot_version"] == version and answer["version"]
        edges = {edge["id"]: edge for edge in answer["edges"]}
        assert len(edges) == 2
        mine = edges["edge-a:41"]
        assert mine["snapshot_version"] == version and mine["spool_backlog"] == 3
        assert mine["connected"] and mine["reports"] and mine["counters"] == "redis unreachable"
        older = next(edge for edge in answer["edges"] if edge["id"] != "edge-a:41")
        assert older["id"].startswith("127.0.0.1 (token adm_")
        assert older["snapshot_version"] == 0 and not older["reports"]
        assert older["spool_backlog"] is None
        assert answer["redis"] == {
            "configured": True,
            "ok": False,
            "edges_on_redis": 1,
            "edges_unreachable": 1,
        }
        # A usage batch refreshes the report; garbage in the headers is not recorded.
        headers = {"X-Edge-Id": "edge-a:41", "X-Edge-Spool-Backlog": "-1"}
        shipped = await ctl.post("/v1/edge/usage", content=msgpack.packb([]), headers=headers)
        assert shipped.status_code == 200
        after = {e["id"]: e for e in (await ctl.get("/v1/system")).json()["edges"]}
        assert after["edge-a:41"]["spool_backlog"] is None
        # The read scope sees the page; the edge scope does not.
        reader = await ctl.create_admin_token(["read"])
        assert (await ctl.get("/v1/system", token=reader["token"])).status_code == 200
        edge = await ctl.create_admin_token(["edge"])
        assert_error(await ctl.get("/v1/system", token=edge["token"]), 403, "Forbidden")

    control_plane(body)


def test_edges_silent_for_a_minute_are_not_connected_and_memory_is_bounded() -> None:
    now = [1000.0]
    registry = EdgeRegistry(clock=lambda: now[0])
    registry.seen({"x-edge-id": "a", "x-edge-snapshot-version": "7"}, "10.0.0.1", "t", 7)
    now[0] += CONNECTED_SECONDS + 1
    registry.seen({"x-edge-id": "b"}, "10.0.0.2", "t", None)
    listed = registry.edges()
    assert [(e["id"], e["connected"]) for e in listed] == [("b", True), ("a", False)]
    now[0] += 86400 + 1
    assert registry.edges() == []
    for i in range(1200):
        registry.seen({"x-edge-id": f"e{i}"}, None, "t", None)
    listed = registry.edges()
    assert len(listed) == 1000 and listed[0]["id"] == "e1199" and listed[-1]["id"] == "e200"


def test_the_embedded_edge_and_retentions_last_run_are_reported(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        assert ctl.app is not None
        services = EdgeServices()
        _app_edges(ctl).local = services.report
        before = (await ctl.get("/v1/system")).json()
        assert before["retention"] == {
            "interval_hours": None,
            "last_run": None,
            "next_run_at": None,
        }
        assert [e["id"] for e in before["edges"]] == [EDGE_ID]
        assert before["edges"][0]["counters"] == "memory"
        assert before["redis"]["configured"] is False and before["redis"]["ok"] is None
        retention: Retention = ctl.app.state.retention
        retention.interval = 3600.0
        await retention.scheduled_run()
        after = (await ctl.get("/v1/system")).json()["retention"]
        assert after["interval_hours"] == 1.0
        assert after["last_run"]["error"] is None and "usage" in after["last_run"]["deleted"]
        assert after["next_run_at"] > after["last_run"]["started_at"]

        async def broken(*, dry_run: bool = False) -> Any:
            raise OSError("disk")

        retention.purge = broken  # type: ignore[method-assign]
        await retention.scheduled_run()
        failed = (await ctl.get("/v1/system")).json()["retention"]["last_run"]
        assert failed["error"] == "OSError" and failed["deleted"] == {}

    control_plane(body)


def utc_day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def test_system_reports_the_request_logs_day_partitions_on_postgresql(
    control_plane: ControlRunner, backend: str
) -> None:
    async def body(ctl: Control) -> None:
        before = (await ctl.get("/v1/system")).json()["request_log"]
        if backend == "sqlite":
            assert before == {"backend": "sqlite", "partitions": None}
            return
        assert before["backend"] == "postgresql"
        assert [p["table"] for p in before["partitions"]] == ["usage", "security_events"]
        assert before["partitions"][0] == {
            "table": "usage",
            "days": 0,
            "oldest_day": None,
            "newest_day": None,
            "default_rows": 0,
        }
        now = time.time()
        await store_usage(
            ctl.st, [record("r-now", now, None), record("r-old", now - 10 * 86400, None)]
        )
        # A record past ingest for a day nobody made: the default partition's.
        await ctl.st.log.execute(
            f"INSERT INTO usage ({', '.join(FIELDS)}) VALUES ({', '.join('?' for _ in FIELDS)})",
            tuple(record("r-stray", now - 40 * 86400, None).get(field) for field in FIELDS),
        )
        usage = (await ctl.get("/v1/system")).json()["request_log"]["partitions"][0]
        assert usage == {
            "table": "usage",
            "days": 4,  # each record's day and the next
            "oldest_day": utc_day(now - 10 * 86400),
            "newest_day": utc_day(now + 86400),
            "default_rows": 1,
        }

    control_plane(body)


def test_an_edge_apart_reports_itself_through_its_control_client(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        assert ctl.app is not None
        services = EdgeServices()
        services.breaker = Breaker("local")
        transport = httpx.ASGITransport(app=ctl.app)
        client = ControlClient("http://control", ctl.token, services.report, transport)
        try:
            snapshot = await client.snapshot(0, 0)
            await client.ship_usage([])
        finally:
            await client.aclose()
        system = (await ctl.get("/v1/system")).json()
        edge = next(e for e in system["edges"] if e["id"] == EDGE_ID)
        assert edge["snapshot_version"] == 0 and snapshot["version"] == ctl.version
        assert edge["counters"] == "redis ok" and edge["spool_backlog"] is None
        assert system["redis"]["ok"] is True
        headers = report_headers(services.report() | {"spool_backlog": 2})
        assert headers["X-Edge-Spool-Backlog"] == "2" and headers["X-Edge-Id"] == EDGE_ID

    control_plane(body)
