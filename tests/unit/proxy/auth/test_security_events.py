"""Security events (failed authentications and refused addresses, with the client address): built
by the edge's addons into the usage spool, checked when they come from an edge apart, stored
idempotently, listed by `GET /v1/security-events`, purged after 90 days, exported with the org."""

from __future__ import annotations

import asyncio
import io
import json
import math
import time
import zipfile
from pathlib import Path
from typing import Any

import msgpack
import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils

from addons.auth import Auth
from addons.edge import Edge
from addons.ipallow import IpAllow
from addons.metering import Metering
from control.api.usage import store_usage
from control.jobs.retention import DAY, Periods, Retention
from control.store import db as dbm
from control.store import requestlog
from control.store.state import ControlState
from proxy.auth.security_marks import ThrottledSample
from proxy.core import keys
from proxy.core.security_events import KIND, REASONS
from proxy.core.usage_records import FIELDS as USAGE_FIELDS
from proxy.core.usage_records import check_record
from proxy.policy import Snapshot
from proxy.services import EdgeConfig, EdgeServices
from proxy.usage.segment import read_segment
from proxy.usage.spool import Spool
from tests.unit.conftest import Control, ControlRunner, assert_error

TASKS = "/api/v3/contents/generations/tasks"
LIST_ROUTE = f"GET {TASKS}"
EVENT_FIELDS = {"kind", "request_id", "ts", "client_ip", "key_id", "org_id", "reason", "status"}
EVENT_FIELDS |= {"route"}
NOW = 1_900_000_000.0  # 2030-03-17


# --- the edge: addons into the spool ----------------------------------------------------------


class EdgeChain:
    """Edge, Auth, IpAllow and Metering on mitmproxy test flows, metering into a real spool; a
    request no addon refused is answered 200 in the relay's place."""

    def __init__(self, spool_dir: Path, snapshot: dict[str, Any]) -> None:
        self.services = EdgeServices()
        self.services.policy.replace(Snapshot.from_wire(snapshot))
        self.spool = self.services.spool = Spool(spool_dir, flush_interval=5.0)
        self.spool_dir = spool_dir
        self.edge, self.auth = Edge(), Auth(self.services)
        self.ipallow, self.metering = IpAllow(), Metering(self.services)

    async def send(
        self, authorization: str | None, peer: str = "127.0.0.1", **headers: str
    ) -> http.HTTPFlow:
        if authorization is not None:
            headers["authorization"] = authorization
        request = tutils.treq(
            method=b"GET",
            path=TASKS.encode(),
            headers=http.Headers([(k.encode(), v.encode()) for k, v in headers.items()]),
            content=b"",
        )
        flow = tflow.tflow(req=request)
        flow.client_conn.peername = (peer, 50000)
        self.edge.requestheaders(flow)
        await self.auth.requestheaders(flow)
        self.ipallow.requestheaders(flow)
        if flow.response is None:
            flow.response = http.Response.make(200, b"{}")
        self.edge.response(flow)
        await self.metering.response(flow)
        return flow

    async def records(self) -> tuple[list[dict[str, Any]], bytes]:
        """Every record the spool holds, and every byte of its segments."""
        await self.spool.close()
        self.services.auth.close()
        records: list[dict[str, Any]] = []
        raw = b""
        for path in sorted(self.spool_dir.glob("*.seg")):
            records += read_segment(path)
            raw += path.read_bytes()
        return records, raw


def key_wire(key_id: str, phc: str, org_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": key_id, "org_id": org_id, "status": "active", "secret_hash": phc} | fields


def split(records: list[dict[str, Any]]) -> tuple[dict[str, dict], dict[str, dict]]:
    """(security events, usage records), each by request id."""
    events = {r["request_id"]: r for r in records if r.get("kind") == KIND}
    usage = {r["request_id"]: r for r in records if "kind" not in r}
    assert len(events) + len(usage) == len(records)
    return events, usage


def test_every_refusal_becomes_one_security_event_and_no_secret_is_kept(tmp_path: Path) -> None:
    good, good_phc = keys.generate_key()
    revoked, revoked_phc = keys.generate_key()
    walled, walled_phc = keys.generate_key()
    good_id, revoked_id, walled_id = (keys.parse_key(k).key_id for k in (good, revoked, walled))
    stranger, _ = keys.generate_key()  # well formed, but no such key id
    wrong_secret = keys.format_key("live", good_id, keys.new_secret())
    mistyped = good[:-1] + ("A" if good[-1] != "A" else "B")  # bad checksum: malformed
    garbage = "sk-GARBAGE-not-a-key-Zq8Wm3"
    snapshot = {
        "version": 1,
        "orgs": [
            {"id": "org_1", "status": "active"},
            {"id": "org_walled", "status": "active", "allowed_ips": ["10.0.0.0/8"]},
        ],
        "keys": [
            key_wire(good_id, good_phc, "org_1"),
            key_wire(revoked_id, revoked_phc, "org_1", status="revoked"),
            key_wire(walled_id, walled_phc, "org_walled"),
        ],
    }

    async def scenario() -> tuple[dict[str, http.HTTPFlow], list[dict], bytes]:
        chain = EdgeChain(tmp_path / "spool", snapshot)
        await chain.spool.start()
        with taddons.context(chain.edge, chain.auth) as tctx:
            tctx.configure(chain.edge, nextapi_trusted_proxies="127.0.0.1")
            flows = {
                "good": await chain.send(f"Bearer {good}"),
                "missing": await chain.send(None),
                "garbage": await chain.send(f"Bearer {garbage}"),
                "mistyped": await chain.send(f"Bearer {mistyped}"),
                "unknown": await chain.send(f"Bearer {stranger}"),
                "wrong_secret": await chain.send(f"Bearer {wrong_secret}"),
                "revoked": await chain.send(f"Bearer {revoked}"),
                "walled": await chain.send(f"Bearer {walled}"),
                # Behind a trusted proxy: the address it forwarded is the client's.
                "forwarded": await chain.send(
                    f"Bearer {stranger}", **{"x-forwarded-for": "203.0.113.7"}
                ),
                "v6": await chain.send(f"Bearer {garbage}", peer="2001:db8::5"),
            }
        records, raw = await chain.records()
        return flows, records, raw

    flows, records, raw = asyncio.run(scenario())
    ids = {name: f.response.headers["X-Request-Id"] for name, f in flows.items()}
    assert [f.response.status_code for f in flows.values()] == [200] + [401] * 6 + [403, 401, 401]
    events, usage = split(records)
    expected = {  # name: (reason, client_ip, key_id, org_id, status)
        "missing": ("missing_key", "127.0.0.1", None, None, 401),
        "garbage": ("malformed_key", "127.0.0.1", None, None, 401),
        "mistyped": ("malformed_key", "127.0.0.1", None, None, 401),
        "unknown": ("unknown_key", "127.0.0.1", keys.parse_key(stranger).key_id, None, 401),
        "wrong_secret": ("wrong_secret", "127.0.0.1", good_id, "org_1", 401),
        "revoked": ("revoked", "127.0.0.1", revoked_id, "org_1", 401),
        "walled": ("ip_not_allowed", "127.0.0.1", walled_id, "org_walled", 403),
        "forwarded": ("unknown_key", "203.0.113.7", keys.parse_key(stranger).key_id, None, 401),
        "v6": ("malformed_key", "2001:db8::5", None, None, 401),
    }
    assert set(events) == {ids[name] for name in expected}  # the good request has none
    for name, (reason, client_ip, key_id, org_id, status) in expected.items():
        event = events[ids[name]]
        assert set(event) == EVENT_FIELDS, name
        assert check_record(event) is None, name
        assert (event["reason"], event["client_ip"], event["key_id"]) == (reason, client_ip, key_id)
        assert (event["org_id"], event["status"], event["route"]) == (org_id, status, LIST_ROUTE)
        assert isinstance(event["ts"], float) and abs(event["ts"] - time.time()) < 60
    # Usage records are unchanged: those of parseable keys only, never a client address.
    assert set(usage) == {
        ids[n] for n in ("good", "unknown", "wrong_secret", "revoked", "walled", "forwarded")
    }
    assert all(set(record) == set(USAGE_FIELDS) for record in usage.values())
    assert (
        usage[ids["good"]]["org_id"] == "org_1" and usage[ids["walled"]]["org_id"] == "org_walled"
    )
    # Nothing of a presented secret is anywhere in the spool: not a malformed key, not the secret
    # of a wrong or mistyped one, not an address in a usage record.
    for secret in (garbage, "GARBAGE", mistyped, wrong_secret, keys.parse_key(wrong_secret).secret):
        assert secret.encode() not in raw, secret
    assert keys.parse_key(good).secret.encode() not in raw
    assert all("127.0.0.1" not in json.dumps(record) for record in usage.values())


def test_the_failed_auth_throttle_is_recorded_as_throttled(tmp_path: Path) -> None:
    key, phc = keys.generate_key()
    key_id = keys.parse_key(key).key_id
    snapshot = {
        "version": 1,
        "orgs": [{"id": "org_1", "status": "active"}],
        "keys": [key_wire(key_id, phc, "org_1")],
    }
    attempts = [keys.format_key("live", key_id, keys.new_secret()) for _ in range(3)]

    async def scenario() -> tuple[list[int], list[dict]]:
        chain = EdgeChain(tmp_path / "spool", snapshot)
        await chain.spool.start()
        limits = EdgeConfig.from_schema(
            "https://up.example", upstream_key="up", auth_failures_per_ip_per_minute=2
        )
        chain.services.configure(limits)  # as the composition root does, from the option
        with taddons.context(chain.edge, chain.auth):
            statuses = [(await chain.send(f"Bearer {k}")).response.status_code for k in attempts]
            for _ in range(50):  # a flood, answered 429 at once
                statuses.append((await chain.send("Bearer junk")).response.status_code)
        records, _ = await chain.records()
        return statuses, records

    statuses, records = asyncio.run(scenario())
    assert statuses == [401, 401, 429] + [429] * 50
    events, _ = split(records)  # in the order the spool took them
    reasons = [(e["reason"], e["status"], e["key_id"], e["org_id"]) for e in events.values()]
    # Only the first throttled refusal of the address this minute is an event: the flood
    # cannot write a row per request.
    assert reasons == [
        ("wrong_secret", 401, key_id, "org_1"),
        ("wrong_secret", 401, key_id, "org_1"),
        ("throttled", 429, key_id, "org_1"),
    ]


def test_throttled_refusals_are_sampled_per_address_per_minute() -> None:
    now = [1000.0]
    sample = ThrottledSample(capacity=2, clock=lambda: now[0])
    assert sample.take("203.0.113.7") and not sample.take("203.0.113.7")
    assert sample.take("2001:db8::1")  # another address has its own minute
    now[0] += 59.9
    assert not sample.take("203.0.113.7")
    now[0] += 0.1
    assert sample.take("203.0.113.7")
    assert sample.take("198.51.100.1")  # over capacity: the oldest address is forgotten
    assert sample.take("2001:db8::1")


# --- records from elsewhere -------------------------------------------------------------------


def event(
    request_id: str,
    ts: float = NOW,
    *,
    client_ip: str | None = "203.0.113.7",
    key_id: str | None = None,
    org_id: str | None = None,
    reason: str = "unknown_key",
    status: int = 401,
) -> dict[str, Any]:
    return {
        "kind": KIND,
        "request_id": request_id,
        "ts": ts,
        "client_ip": client_ip,
        "key_id": key_id,
        "org_id": org_id,
        "reason": reason,
        "status": status,
        "route": LIST_ROUTE,
    }


def usage_record(request_id: str, ts: float = NOW, org_id: str | None = None) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "ts": ts,
        "org_id": org_id,
        "key_id": "K" * 16,
        "method": "GET",
        "route": LIST_ROUTE,
        "status": 200,
        "latency_ms": 1.5,
        "upstream_latency_ms": None,
        "bytes_in": 0,
        "bytes_out": 10,
        "credits": 0,
        "model": None,
        "task_id": None,
        "limited_by": None,
    }


KEY_ID = "AbCdEfGh12345678"
FULL_KEY = keys.format_key("live", KEY_ID, "S" * keys.SECRET_LENGTH)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"reason": "bored"}, "reason"),
        ({"reason": ["unknown_key"]}, "reason"),
        ({"reason": None}, "reason"),
        ({"client_ip": "not-an-address"}, "client_ip"),
        ({"client_ip": "2001:0db8::1"}, "client_ip"),  # not as an edge writes it
        ({"client_ip": 2130706433}, "client_ip"),
        ({"key_id": FULL_KEY}, "key_id"),  # a whole key, secret and all, is not a key id
        ({"key_id": "short"}, "key_id"),
        ({"authorization": f"Bearer {FULL_KEY}"}, "unexpected field"),
        ({"ts": math.nan}, "ts"),
        ({"ts": math.inf}, "ts"),
        ({"ts": "2030-01-01"}, "ts"),
        ({"status": True}, "status"),
        ({"status": 42}, "status"),
        ({"request_id": ""}, "request_id"),
        ({"request_id": "r" * 129}, "request_id"),
        ({"org_id": 7}, "org_id"),
        ({"route": "x" * 300}, "route"),
        ({"kind": "telemetry"}, "kind"),
    ],
)
def test_foreign_security_events_are_checked(change: dict[str, Any], problem: str) -> None:
    assert check_record(event("req_ok", key_id=KEY_ID, org_id="org_1")) is None
    bad = event("req_bad", key_id=KEY_ID) | change
    found = check_record(bad)
    assert found is not None and problem in found, found


def test_usage_records_are_checked_as_before() -> None:
    assert check_record(usage_record("req_u")) is None
    assert check_record(usage_record("req_u") | {"kind": None}) is not None
    assert "status" in (check_record(usage_record("req_u") | {"status": "200"}) or "")
    # A usage record is never taken for an event, nor an event for a usage record.
    assert check_record(usage_record("req_u") | {"kind": KIND}) is not None
    assert check_record({k: v for k, v in event("req_e").items() if k != "kind"}) is not None
    assert REASONS >= {"wrong_secret", "malformed_key", "throttled", "ip_not_allowed"}


# --- stored in the control plane ----------------------------------------------------------------


async def post_batch(ctl: Control, records: list[dict[str, Any]], token: Any = ...) -> Any:
    return await ctl.post(
        "/v1/edge/usage",
        content=msgpack.packb(records),
        headers={"Content-Type": "application/msgpack"},
        token=token,
    )


def test_edges_ship_events_with_usage_idempotently(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        edge = (await ctl.create_admin_token(["edge"]))["token"]
        batch = [usage_record("req_u1"), event("req_e1"), event("req_e2", client_ip="::1")]
        stored = await post_batch(ctl, batch, token=edge)
        assert stored.status_code == 200, stored.text
        assert msgpack.unpackb(stored.content) == {"stored": 3}
        assert (await post_batch(ctl, batch, token=edge)).status_code == 200  # a resend
        events = await ctl.log_rows("SELECT * FROM security_events ORDER BY request_id")
        assert [(e["request_id"], e["client_ip"]) for e in events] == [
            ("req_e1", "203.0.113.7"),
            ("req_e2", "::1"),
        ]
        sent = {k: v for k, v in event("req_e1").items() if k != "kind"}
        assert {k: events[0][k] for k in sent} == sent  # (PostgreSQL's rows also have a rowid)
        assert [r["request_id"] for r in await ctl.log_rows("SELECT * FROM usage")] == ["req_u1"]

        # One bad event refuses the whole batch (the edge keeps it in its spool), as a bad usage
        # record does.
        bad = [usage_record("req_u2"), event("req_e3"), event("req_e4", client_ip="nope")]
        refused = await post_batch(ctl, bad, token=edge)
        assert_error(refused, 400, "InvalidParameter")
        assert "record 2" in refused.json()["error"]["message"]
        assert len(await ctl.log_rows("SELECT * FROM security_events")) == 2
        assert len(await ctl.log_rows("SELECT * FROM usage")) == 1

    control_plane(body)


def test_store_usage_splits_kinds_and_events_never_suspend_a_key(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        key = await ctl.create_key(org["id"])
        ctl.st.suspend_after_rate_limited = 1
        throttled = [
            event(f"req_t{n}", key_id=key["id"], org_id=org["id"], reason="throttled", status=429)
            for n in range(3)
        ]
        await store_usage(ctl.st, [*throttled, usage_record("req_u"), {"kind": "future"}])
        await store_usage(ctl.st, throttled)  # a replayed segment
        assert len(await ctl.log_rows("SELECT * FROM security_events")) == 3
        assert len(await ctl.log_rows("SELECT * FROM usage")) == 1
        # Anyone can send a key's id with wrong secrets: that never suspends the key.
        assert (await ctl.get(f"/v1/keys/{key['id']}")).json()["status"] == "active"

    control_plane(body)


# --- GET /v1/security-events --------------------------------------------------------------------


async def seed_events(ctl: Control, records: list[dict[str, Any]]) -> None:
    await store_usage(ctl.st, records)


async def listed(ctl: Control, token: Any = ..., **params: Any) -> list[dict[str, Any]]:
    """Every page of the list, following the cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = params | ({"cursor": cursor} if cursor else {})
        page = await ctl.get("/v1/security-events", params=query, token=token)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def test_the_list_filters_pages_and_is_for_admins(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        records = [
            event("req_a", NOW - 30, client_ip="203.0.113.7", key_id=KEY_ID, org_id="org_1"),
            event("req_b", NOW - 20, client_ip="203.0.113.7", reason="malformed_key"),
            event("req_c", NOW - 10, client_ip="198.51.100.1", key_id=KEY_ID, org_id="org_1"),
            event("req_d", NOW - 10, client_ip="2001:db8::1", reason="throttled", status=429),
            event("req_e", NOW, client_ip=None, org_id="org_2", reason="ip_not_allowed"),
        ]
        await seed_events(ctl, records)

        everything = await listed(ctl, limit=2)  # three pages
        assert [e["id"] for e in everything] == ["req_e", "req_d", "req_c", "req_b", "req_a"]
        assert everything[-1] == {
            "id": "req_a",
            "ts": "2030-03-17T17:46:10.000Z",
            "client_ip": "203.0.113.7",
            "key_id": KEY_ID,
            "org_id": "org_1",
            "reason": "unknown_key",
            "status": 401,
            "route": LIST_ROUTE,
        }

        def ids(items: list[dict[str, Any]]) -> list[str]:
            return [item["id"] for item in items]

        assert ids(await listed(ctl, client_ip="203.0.113.7")) == ["req_b", "req_a"]
        # The address as a dual-stack listener or a human may write it.
        assert ids(await listed(ctl, client_ip="::ffff:203.0.113.7")) == ["req_b", "req_a"]
        assert ids(await listed(ctl, client_ip="2001:0db8::0001")) == ["req_d"]
        assert ids(await listed(ctl, key_id=KEY_ID)) == ["req_c", "req_a"]
        assert ids(await listed(ctl, org_id="org_1", limit=1)) == ["req_c", "req_a"]
        assert ids(await listed(ctl, reason="throttled")) == ["req_d"]
        window = {"from": "2030-03-17T17:46:20Z", "to": "2030-03-17T17:46:40Z"}
        assert ids(await listed(ctl, **window)) == ["req_d", "req_c", "req_b"]
        assert ids(await listed(ctl, client_ip="192.0.2.1")) == []

        for params in (
            {"client_ip": "nope"},
            {"reason": "bored"},
            {"from": "yesterday"},
            {"cursor": "garbage!"},
            {"limit": "0"},
        ):
            response = await ctl.get("/v1/security-events", params=params)
            assert_error(response, 400, "InvalidParameter")

        # Admins (and read-only admins) only: not an edge's token, not without a token.
        read = (await ctl.create_admin_token(["read"]))["token"]
        assert len(await listed(ctl, token=read)) == 5
        edge = (await ctl.create_admin_token(["edge"]))["token"]
        assert_error(await ctl.get("/v1/security-events", token=edge), 403, "Forbidden")
        assert_error(await ctl.get("/v1/security-events", token=None), 401)
        assert_error(await ctl.get("/v1/security-events", token="nat_wrong"), 401)
        assert_error(await ctl.post("/v1/security-events"), 405)

        schema = (await ctl.get("/openapi.json")).json()
        assert schema["paths"]["/v1/security-events"]["get"]["security"] == [{"admin": []}]

    control_plane(body)


# --- retention ----------------------------------------------------------------------------------


async def count(state: ControlState, sql: str) -> int:
    db = state.log if sql.split()[0] in requestlog.TABLES else state.db  # the table's file
    row = await dbm.fetch_one(db, f"SELECT COUNT(*) AS n FROM {sql}")
    return row["n"] if row else 0


def test_events_go_after_90_days_and_nothing_else_goes_with_them(tmp_path: Path) -> None:
    async def main() -> None:
        state = await ControlState.open(tmp_path)
        try:
            # Logs kept a year here, so that only this purge could delete anything.
            periods = Periods(api_logs_days=365)
            retention = Retention(state, periods, clock=lambda: NOW, batch=10)
            old = [event(f"req_old_{n}", NOW - 91 * DAY) for n in range(25)]  # three batches
            await store_usage(
                state,
                [
                    *old,
                    event("req_recent", NOW - 89 * DAY),
                    usage_record("req_usage_old", NOW - 91 * DAY, org_id="org_1"),
                ],
            )
            await state.db.execute(
                "INSERT INTO ledger (org_id, kind, amount, reason, created_at) "
                "VALUES ('org_1', 'grant', 1, 'old', ?)",
                (NOW - 91 * DAY,),
            )
            dry = await retention.purge(dry_run=True)
            assert dry.counts["security_events"] == 25
            assert "security_events: 25" in dry.lines()
            assert await count(state, "security_events") == 26  # a dry run deletes nothing
            report = await retention.purge()
            assert report.counts["security_events"] == 25
            rows = await dbm.fetch_all(state.log, "SELECT request_id FROM security_events")
            assert [r["request_id"] for r in rows] == ["req_recent"]
            assert report.counts["usage"] == 0 and report.counts["ledger"] == 0
            assert await count(state, "usage") == 1 and await count(state, "ledger") == 1
            assert (await retention.purge()).counts["security_events"] == 0
            # The period is its own setting.
            shorter = Retention(state, Periods(security_events_days=30), clock=lambda: NOW)
            assert (await shorter.purge()).counts["security_events"] == 1
        finally:
            await state.close()

    asyncio.run(main())


def test_a_purged_account_keeps_its_events_unlinked(tmp_path: Path) -> None:
    async def main() -> None:
        state = await ControlState.open(tmp_path)
        try:
            for org_id, closed_at in (("org_gone", NOW - 31 * DAY), ("org_live", None)):
                await state.db.execute(
                    "INSERT INTO orgs (id, name, email, status, created_at, updated_at, "
                    "closed_at) VALUES (?, ?, 'x@example.com', ?, 0, 0, ?)",
                    (org_id, org_id, "closed" if closed_at else "active", closed_at),
                )
            await store_usage(
                state,
                [
                    event("req_gone_1", NOW - DAY, key_id=KEY_ID, org_id="org_gone"),
                    event("req_gone_2", NOW - DAY, key_id=KEY_ID, org_id="org_gone"),
                    event("req_live", NOW - DAY, key_id=KEY_ID, org_id="org_live"),
                ],
            )
            retention = Retention(state, clock=lambda: NOW, batch=1)
            dry = await retention.purge(dry_run=True)
            assert dry.counts["closed_account.security_events_unlinked"] == 2
            assert await count(state, "security_events WHERE org_id='org_gone'") == 2
            report = await retention.purge()
            assert report.counts["closed_account.security_events_unlinked"] == 2
            rows = await dbm.fetch_all(state.log, "SELECT * FROM security_events ORDER BY 1")
            assert [(r["request_id"], r["org_id"], r["key_id"], r["client_ip"]) for r in rows] == [
                ("req_gone_1", None, KEY_ID, "203.0.113.7"),
                ("req_gone_2", None, KEY_ID, "203.0.113.7"),
                ("req_live", "org_live", KEY_ID, "203.0.113.7"),
            ]
        finally:
            await state.close()

    asyncio.run(main())


# --- export -------------------------------------------------------------------------------------


def test_the_export_holds_the_orgs_events(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = (await ctl.create_org())["id"]
        other = (await ctl.create_org(name="Other", email="o@example.test"))["id"]
        await seed_events(
            ctl,
            [
                event("req_2", NOW + 2, key_id=KEY_ID, org_id=org, reason="wrong_secret"),
                event("req_1", NOW + 1, client_ip="2001:db8::7", org_id=org, status=403),
                event("req_other", NOW, client_ip="198.51.100.99", org_id=other),
                event("req_nobody", NOW, client_ip="192.0.2.99"),
            ],
        )
        response = await ctl.get(f"/v1/orgs/{org}/export")
        assert response.status_code == 200, response.text
        with zipfile.ZipFile(io.BytesIO(response.content)) as bundle:
            lines = bundle.read("security_events.ndjson").decode().splitlines()
            manifest = json.loads(bundle.read("manifest.json"))
            everything = b"".join(bundle.read(name) for name in bundle.namelist())
        exported = [json.loads(line) for line in lines]
        assert [(e["id"], e["client_ip"], e["reason"]) for e in exported] == [
            ("req_1", "2001:db8::7", "unknown_key"),
            ("req_2", "203.0.113.7", "wrong_secret"),
        ]
        assert exported == (await listed(ctl, org_id=org))[::-1]  # as the list shows them
        assert manifest["files"]["security_events.ndjson"] == {"format": "ndjson", "records": 2}
        for marker in (b"req_other", b"198.51.100.99", b"req_nobody", b"192.0.2.99"):
            assert marker not in everything

    control_plane(body)
