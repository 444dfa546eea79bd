"""The control plane's request log, the edge API (msgpack snapshot and usage), and the small
things: health, readiness, the schema, the error envelope for bad routes and bodies."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import msgpack
import pytest

import control.app
from control.api.usage import store_usage
from control.http import encode_cursor
from proxy.core.usage_records import FIELDS
from tests.unit.conftest import Control, ControlRunner, assert_error

T0 = 1_750_000_000.0  # 2025-06-15T15:06:40Z


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def parse_ts(value: str) -> float:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def record(request_id: str, ts: float, org_id: str | None, **extra: Any) -> dict[str, Any]:
    """A usage record as the edge writes it (every field of proxy.usage.FIELDS)."""
    base: dict[str, Any] = {
        "request_id": request_id,
        "ts": ts,
        "org_id": org_id,
        "key_id": "AAAAAAAAAAAAAAAA",
        "method": "POST",
        "route": "/api/v3/contents/generations/tasks",
        "status": 200,
        "latency_ms": 12.5,
        "upstream_latency_ms": 10.25,
        "bytes_in": 321,
        "bytes_out": 654,
        "credits": 1_500_000,
        "model": "seedance-1-0-pro",
        "task_id": "cgt-1",
        "limited_by": None,
    }
    assert set(base) == set(FIELDS)
    return base | extra


async def all_requests(ctl: Control, org_id: str, **params: Any) -> tuple[list[str], int]:
    """Every request id of the org's log, following the cursor; and the number of pages."""
    ids: list[str] = []
    cursor: str | None = None
    for pages in range(1, 100):
        query = params | ({"cursor": cursor} if cursor else {})
        response = await ctl.get(f"/v1/orgs/{org_id}/requests", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        ids += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids, pages
    raise AssertionError("the cursor never ends")


async def usage_count(ctl: Control, request_id: str | None = None) -> int:
    if request_id is None:
        rows = await ctl.log_rows("SELECT count(*) AS n FROM usage")
    else:
        rows = await ctl.log_rows("SELECT count(*) AS n FROM usage WHERE request_id=?", request_id)
    return int(rows[0]["n"])


# =============================================================================== request log


async def seed_request_log(ctl: Control) -> tuple[dict[str, Any], dict[str, Any]]:
    a = await ctl.create_org(name="A")
    b = await ctl.create_org(name="B")
    await store_usage(
        ctl.st,
        [
            record("req_a1", T0 + 10, a["id"]),
            record("req_a2", T0 + 20, a["id"]),
            record("req_a3", T0 + 20, a["id"], status=500),  # same instant as a2
            record("req_a4", T0 + 30, a["id"]),
            record("req_b1", T0 + 25, b["id"]),
        ],
    )
    await store_usage(
        ctl.st,
        [
            # A replay, altered (an edge resends the same record: its request id and time;
            # PostgreSQL's key is the two, control/store/partitions.py): ignored.
            record("req_a4", T0 + 30, a["id"], status=418),
            record("req_a5", T0 + 40, a["id"]),
            record("req_a6", T0 + 50, a["id"], credits=0, model=None, task_id=None),
            record("req_a7", T0 + 60, a["id"]),
            record("req_b2", T0 + 35, b["id"]),
        ],
    )
    return a, b


NEWEST_FIRST_A = ["req_a7", "req_a6", "req_a5", "req_a4", "req_a3", "req_a2", "req_a1"]


def test_request_log_lists_one_org_newest_first(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        a, b = await seed_request_log(ctl)
        assert await usage_count(ctl) == 9
        assert await usage_count(ctl, "req_a4") == 1

        response = await ctl.get(f"/v1/orgs/{a['id']}/requests")
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["next_cursor"] is None
        items = page["items"]
        assert [item["id"] for item in items] == NEWEST_FIRST_A
        assert all(item["org_id"] == a["id"] for item in items)

        a7 = items[0]
        assert parse_ts(a7["ts"]) == T0 + 60
        assert a7["status"] == 200
        assert a7["method"] == "POST"
        assert a7["credits"] == 1_500_000
        assert a7["model"] == "seedance-1-0-pro"
        # The replayed request id kept its first version.
        (a4,) = [item for item in items if item["id"] == "req_a4"]
        assert a4["status"] == 200 and parse_ts(a4["ts"]) == T0 + 30

        other = (await ctl.get(f"/v1/orgs/{b['id']}/requests")).json()["items"]
        assert [item["id"] for item in other] == ["req_b2", "req_b1"]

        empty = await ctl.create_org(name="Empty")
        response = await ctl.get(f"/v1/orgs/{empty['id']}/requests")
        assert response.json() == {"items": [], "next_cursor": None}

    control_plane(body)


def test_request_log_filters_by_time(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        a, _ = await seed_request_log(ctl)
        path = f"/v1/orgs/{a['id']}/requests"
        window = {"from": iso(T0 + 15), "to": iso(T0 + 45)}
        items = (await ctl.get(path, params=window)).json()["items"]
        assert [item["id"] for item in items] == ["req_a5", "req_a4", "req_a3", "req_a2"]

        since = (await ctl.get(path, params={"from": iso(T0 + 45)})).json()["items"]
        assert [item["id"] for item in since] == ["req_a7", "req_a6"]
        until = (await ctl.get(path, params={"to": iso(T0 + 15)})).json()["items"]
        assert [item["id"] for item in until] == ["req_a1"]
        # Any zone is understood, not just Z.
        shifted = {"from": "2025-06-15T17:06:55+02:00", "to": "2025-06-15T15:07:25+00:00"}
        items = (await ctl.get(path, params=shifted)).json()["items"]
        assert [item["id"] for item in items] == ["req_a5", "req_a4", "req_a3", "req_a2"]

        # Paging inside a window.
        ids, pages = await all_requests(ctl, a["id"], limit=1, **window)
        assert ids == ["req_a5", "req_a4", "req_a3", "req_a2"]
        assert pages == 4

    control_plane(body)


def test_request_log_cursor_returns_every_record_once(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        a, _ = await seed_request_log(ctl)
        # More records sharing one instant, so the cursor must break ties.
        await store_usage(ctl.st, [record(f"req_t{i}", T0 + 20, a["id"]) for i in range(5)])
        expected = (await ctl.get(f"/v1/orgs/{a['id']}/requests")).json()["items"]
        expected_ids = [item["id"] for item in expected]
        assert len(expected_ids) == 12

        for limit in (1, 2, 5, 11, 12):
            ids, pages = await all_requests(ctl, a["id"], limit=limit)
            assert ids == expected_ids, limit
            assert pages == -(-12 // limit), limit

    control_plane(body)


def test_request_log_refuses_bad_queries(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        a, _ = await seed_request_log(ctl)
        path = f"/v1/orgs/{a['id']}/requests"
        for params in [
            {"from": "yesterday"},
            {"from": "2025-06-15T15:00:00"},  # no zone
            {"from": ""},
            {"to": "2025-13-01T00:00:00Z"},
            {"cursor": "!!!"},
            {"cursor": encode_cursor(T0)},  # the wrong shape
            {"limit": "0"},
            {"limit": "x"},
        ]:
            assert_error(await ctl.get(path, params=params), 400, "InvalidParameter")
        assert_error(await ctl.get("/v1/orgs/org_nope/requests"), 404, "NotFound")
        assert_error(await ctl.get(path, token=None), 401, "AuthenticationError")

    control_plane(body)


# ================================================================================== edge API


def test_edge_snapshot_is_the_state_snapshot_in_msgpack(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org(allowed_ips=["10.0.0.0/8"])
        await ctl.create_key(org["id"], models=["m1"])
        response = await ctl.get("/v1/edge/snapshot")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/msgpack")
        assert msgpack.unpackb(response.content) == ctl.snapshot

        # `after` older than the current version: answered at once, no waiting.
        response = await ctl.get("/v1/edge/snapshot", params={"after": 0, "wait": 5})
        assert msgpack.unpackb(response.content) == ctl.snapshot

        assert_error(await ctl.get("/v1/edge/snapshot", token=None), 401, "AuthenticationError")
        for params in [{"after": "x"}, {"wait": "soon"}]:
            assert_error(await ctl.get("/v1/edge/snapshot", params=params), 400)

    control_plane(body)


def test_edge_snapshot_long_poll_wakes_on_a_change(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        await ctl.get("/v1/orgs")  # the admin token's verification is cached from here on
        current = ctl.version

        # Know for certain that the poll is parked before the change is made.
        waiting = asyncio.Event()
        original = ctl.st.wait_for_snapshot

        async def spy(after: int, wait: float) -> dict[str, Any]:
            waiting.set()
            return await original(after, wait)

        ctl.st.wait_for_snapshot = spy  # type: ignore[method-assign]
        started = time.monotonic()
        poll = asyncio.create_task(
            ctl.get("/v1/edge/snapshot", params={"after": current, "wait": 2})
        )
        await asyncio.wait_for(waiting.wait(), timeout=5)
        assert not poll.done()

        org = await ctl.create_org(name="Wake")
        response = await poll
        elapsed = time.monotonic() - started
        assert response.status_code == 200, response.text
        snapshot = msgpack.unpackb(response.content)
        assert snapshot["version"] > current
        assert snapshot["version"] == ctl.version
        assert org["id"] in {o["id"] for o in snapshot["orgs"]}
        assert elapsed < 1.5, f"the long poll took {elapsed:.2f}s; it should end on the change"

    control_plane(body)


def test_edge_snapshot_long_poll_is_released_on_shutdown(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        await ctl.get("/v1/orgs")
        current = ctl.version
        waiting = asyncio.Event()
        original = ctl.st.wait_for_snapshot

        async def spy(after: int, wait: float) -> dict[str, Any]:
            waiting.set()
            return await original(after, wait)

        ctl.st.wait_for_snapshot = spy  # type: ignore[method-assign]
        started = time.monotonic()
        poll = asyncio.create_task(
            ctl.get("/v1/edge/snapshot", params={"after": current, "wait": 5})
        )
        await asyncio.wait_for(waiting.wait(), timeout=5)
        await ctl.st.release_waiters()
        response = await poll
        assert response.status_code == 200, response.text
        assert msgpack.unpackb(response.content)["version"] == current
        assert time.monotonic() - started < 2

    control_plane(body)


def test_edge_snapshot_long_poll_times_out_unchanged(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        current = ctl.version
        started = time.monotonic()
        response = await ctl.get("/v1/edge/snapshot", params={"after": current, "wait": 0.2})
        elapsed = time.monotonic() - started
        assert response.status_code == 200
        assert msgpack.unpackb(response.content)["version"] == current
        assert 0.15 <= elapsed < 5

    control_plane(body)


def test_edge_usage_is_stored_idempotently(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        batch = [record(f"req_e{i}", T0 + i, org["id"]) for i in range(3)]
        headers = {"Content-Type": "application/msgpack"}
        for _ in range(2):  # an edge resending after a lost answer
            response = await ctl.post(
                "/v1/edge/usage", content=msgpack.packb(batch), headers=headers
            )
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("application/msgpack")
            assert msgpack.unpackb(response.content)["stored"] == 3
        assert await usage_count(ctl) == 3

        overlap = [batch[2], record("req_e3", T0 + 3, org["id"])]
        response = await ctl.post("/v1/edge/usage", content=msgpack.packb(overlap))
        assert response.status_code == 200
        assert await usage_count(ctl) == 4
        ids, _ = await all_requests(ctl, org["id"])
        assert ids == ["req_e3", "req_e2", "req_e1", "req_e0"]

        empty = await ctl.post("/v1/edge/usage", content=msgpack.packb([]))
        assert empty.status_code == 200
        assert await usage_count(ctl) == 4

    control_plane(body)


def test_edge_usage_refuses_garbage(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        for garbage in [
            b"",
            b"\xc1",  # never used in msgpack
            b"this is not msgpack",
            msgpack.packb({"request_id": "req_x"}),
            msgpack.packb([1, 2, 3]),
            msgpack.packb(["req_x"]),
            msgpack.packb("records"),
            msgpack.packb([record("req_x", T0, None)])[:-3],  # truncated
            b'[{"request_id": "req_x"}]',  # JSON, not msgpack
        ]:
            response = await ctl.post("/v1/edge/usage", content=garbage)
            assert_error(response, 400, "InvalidParameter")
        assert await usage_count(ctl) == 0
        response = await ctl.post("/v1/edge/usage", token=None, content=msgpack.packb([]))
        assert_error(response, 401, "AuthenticationError")

    control_plane(body)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({}, id="empty-record"),
        pytest.param({"request_id": None}, id="no-request-id"),
        pytest.param({"ts": "yesterday"}, id="text-ts"),
    ],
)
def test_edge_usage_refuses_malformed_records(
    control_plane: ControlRunner, bad: dict[str, Any]
) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        rec = {} if not bad else record("req_bad", T0, org["id"]) | bad
        for _ in range(2):
            response = await ctl.post("/v1/edge/usage", content=msgpack.packb([rec]))
            assert_error(response, 400, "InvalidParameter")
        assert await usage_count(ctl) == 0
        assert (await ctl.get(f"/v1/orgs/{org['id']}/requests")).status_code == 200

    control_plane(body)


def test_edge_api_needs_the_edge_or_admin_scope(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        reader = await ctl.create_admin_token(["read"])
        response = await ctl.get("/v1/edge/snapshot", token=reader["token"])
        assert_error(response, 403)
        edge = await ctl.create_admin_token(["edge"])
        assert (await ctl.get("/v1/edge/snapshot", token=edge["token"])).status_code == 200
        shipped = await ctl.post("/v1/edge/usage", content=msgpack.packb([]), token=edge["token"])
        assert shipped.status_code == 200
        # An edge token is for the edge API only.
        assert_error(await ctl.get("/v1/orgs", token=edge["token"]), 403)

    control_plane(body)


@pytest.mark.parametrize(
    "field",
    [
        pytest.param({"rate_limit": {"requests_per_minute": 10**20}}, id="rate_limit"),
        pytest.param({"spend_limit": {"amount": 2**64, "period": "day"}}, id="spend_limit"),
    ],
)
def test_huge_limits_do_not_break_the_edge_snapshot(
    control_plane: ControlRunner, field: dict[str, Any]
) -> None:
    async def body(ctl: Control) -> None:
        response = await ctl.post("/v1/orgs", json={"name": "Big", "email": "b@b.example"} | field)
        assert response.status_code in (201, 400), response.text
        snapshot = await ctl.get("/v1/edge/snapshot")
        assert snapshot.status_code == 200, snapshot.text

    control_plane(body)


# ====================================================================================== misc


def test_healthz_and_readyz(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        health = await ctl.get("/healthz", token=None)
        assert health.status_code == 200
        assert health.json()["status"] == "ok"

        ready = await ctl.get("/readyz", token=None)
        assert ready.status_code == 200
        assert ready.json()["policy_version"] == ctl.version
        await ctl.create_org()
        ready = await ctl.get("/readyz", token=None)
        assert ready.json()["policy_version"] == ctl.version

    control_plane(body)


def test_openapi_lists_every_route(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        response = await ctl.get("/openapi.json")
        assert response.status_code == 200, response.text
        schema = response.json()
        assert schema["openapi"].startswith("3.")
        paths = schema["paths"]
        for route in control.app.ROUTES:
            assert route.path in paths, route.path
            for method in (route.methods or set()) - {"HEAD"}:
                operation = paths[route.path].get(method.lower())
                assert operation is not None, (method, route.path)
                assert operation.get("operationId"), (method, route.path)

    control_plane(body)


def test_operations_the_schema_protects_refuse_anonymous_calls(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        paths = (await ctl.get("/openapi.json")).json()["paths"]
        unprotected = []
        for path, operations in paths.items():
            for method, operation in operations.items():
                if not operation.get("security"):
                    continue
                concrete = (
                    path.replace("{org}", "org_x").replace("{key}", "k").replace("{token}", "adm_x")
                )
                response = await ctl.request(method.upper(), concrete, token=None)
                if response.status_code != 401:
                    unprotected.append((method, path, response.status_code))
        assert unprotected == []

    control_plane(body)


def test_unknown_paths_and_methods_use_the_error_envelope(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        for path in ["/nope", "/v1", "/v1/organisations", "/v1/orgs/x/keys/y/z"]:
            assert_error(await ctl.get(path), 404, "NotFound")
            assert_error(await ctl.get(path, token=None), 404, "NotFound")
        assert_error(await ctl.request("PUT", "/v1/orgs"), 405)

    control_plane(body)


def test_bad_json_bodies_are_a_400(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        key = await ctl.create_key(org["id"])
        json_headers = {"Content-Type": "application/json"}
        bodies = [b"{not json", b'{"name": "x",}', b"\xff\xfe\x00", b"[]", b'[{"name": "x"}]']
        bodies += [b'"a string"', b"42", b"null", b"true"]
        targets = [
            ("POST", "/v1/orgs"),
            ("PATCH", f"/v1/orgs/{org['id']}"),
            ("POST", f"/v1/orgs/{org['id']}/keys"),
            ("PATCH", f"/v1/keys/{key['id']}"),
            ("POST", f"/v1/keys/{key['id']}/rotate"),
            ("POST", "/v1/admin/tokens"),
        ]
        version = ctl.version
        for method, path in targets:
            for raw in bodies:
                response = await ctl.request(method, path, content=raw, headers=json_headers)
                assert_error(response, 400, "InvalidParameter")
        assert ctl.version == version
        assert len((await ctl.get("/v1/orgs")).json()["items"]) == 1

    control_plane(body)


def test_limit_with_a_unicode_digit_is_a_400(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        assert_error(await ctl.get("/v1/orgs", params={"limit": "²"}), 400)

    control_plane(body)


@pytest.mark.parametrize("cursor", [encode_cursor(), encode_cursor("x")], ids=["empty", "text"])
@pytest.mark.parametrize("listing", ["orgs", "keys", "audit"])
def test_cursor_of_the_wrong_shape_is_a_400(
    control_plane: ControlRunner, listing: str, cursor: str
) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        path = {
            "orgs": "/v1/orgs",
            "keys": f"/v1/orgs/{org['id']}/keys",
            "audit": "/v1/audit",
        }[listing]
        assert_error(await ctl.get(path, params={"cursor": cursor}), 400, "InvalidParameter")

    control_plane(body)


def test_request_log_cursor_with_nested_parts_is_a_400(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        cursor = encode_cursor([1], [2])
        response = await ctl.get(f"/v1/orgs/{org['id']}/requests", params={"cursor": cursor})
        assert_error(response, 400, "InvalidParameter")

    control_plane(body)


def test_wrong_method_is_405_with_allow(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        response = await ctl.request("PUT", "/v1/orgs")
        assert_error(response, 405)
        assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}

    control_plane(body)
