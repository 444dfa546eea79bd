"""Security events end to end: refusals at the edge (a wrong secret, an unknown key, a garbage key,
an address outside an org's allowlist) reach the control plane as security events with the
client address, through one process (`--role all`) or from an edge apart; the request log of
the same requests still holds no client address."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from proxy.core import keys
from tests.e2e.harness import Cluster, Gateway, Simulator

TASKS = "/api/v3/contents/generations/tasks"
LIST_ROUTE = f"GET {TASKS}"
GARBAGE = "sk-GARBAGE-secret-Zq8Wm3Lk"
LOOPBACK = "127.0.0.1"


def get_as(base_url: str, key: str) -> httpx.Response:
    with httpx.Client(base_url=base_url, timeout=15) as client:
        return client.get(TASKS, headers={"Authorization": f"Bearer {key}"})


def security_events(admin: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    """Every page of `GET /v1/security-events`."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = params | ({"cursor": cursor} if cursor else {})
        page = admin.get("/v1/security-events", params=query)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def a_moment_ago() -> str:
    """A `from` for the events of this test on (a shared gateway holds others' too)."""
    moment = datetime.now(UTC) - timedelta(seconds=1)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wait_for_events(
    admin: httpx.Client, request_ids: set[str], since: str, timeout: float = 15.0
) -> dict[str, dict[str, Any]]:
    """The events of these requests, by request id, once all of them are stored."""
    deadline = time.monotonic() + timeout
    while True:
        found = {e["id"]: e for e in security_events(admin, client_ip=LOOPBACK, **{"from": since})}
        if request_ids <= set(found) or time.monotonic() > deadline:
            missing = request_ids - set(found)
            assert not missing, f"no security event for {sorted(missing)}"
            return {request_id: found[request_id] for request_id in request_ids}
        time.sleep(0.05)


def refuse_four_ways(
    edge_url: str, key: str, walled_key: str
) -> tuple[dict[str, str], Callable[[dict[str, dict[str, Any]]], None]]:
    """Send the four refusals; their request ids, and a check of their events."""
    key_id = keys.parse_key(key).key_id
    wrong_secret = keys.format_key("live", key_id, keys.new_secret())
    stranger, _ = keys.generate_key("live")
    answers = {
        "wrong_secret": get_as(edge_url, wrong_secret),
        "unknown_key": get_as(edge_url, stranger),
        "malformed_key": get_as(edge_url, GARBAGE),
        "ip_not_allowed": get_as(edge_url, walled_key),
    }
    statuses = {reason: answer.status_code for reason, answer in answers.items()}
    assert statuses == {
        "wrong_secret": 401,
        "unknown_key": 401,
        "malformed_key": 401,
        "ip_not_allowed": 403,
    }
    ids = {reason: answer.headers["x-request-id"] for reason, answer in answers.items()}
    expected_keys = {
        "wrong_secret": key_id,
        "unknown_key": keys.parse_key(stranger).key_id,
        "malformed_key": None,
        "ip_not_allowed": keys.parse_key(walled_key).key_id,
    }

    def check(events: dict[str, dict[str, Any]]) -> None:
        for reason, request_id in ids.items():
            event = events[request_id]
            assert event["reason"] == reason
            assert event["client_ip"] == LOOPBACK
            assert event["key_id"] == expected_keys[reason]
            assert event["status"] == statuses[reason]
            assert event["route"] == LIST_ROUTE
        text = json.dumps(events)
        assert GARBAGE not in text and "GARBAGE" not in text
        assert keys.parse_key(wrong_secret).secret not in text

    return ids, check


def test_refusals_become_security_events_and_the_request_log_keeps_no_address(
    gateway: Gateway,
) -> None:
    since = a_moment_ago()
    org = gateway.create_org()
    key = gateway.create_key(org["id"])["key"]
    walled = gateway.create_org(allowed_ips=["10.0.0.0/8"])
    walled_key = gateway.create_key(walled["id"])["key"]
    served = get_as(gateway.edge_url, key)
    assert served.status_code == 200, served.text

    ids, check = refuse_four_ways(gateway.edge_url, key, walled_key)
    events = wait_for_events(gateway.admin, set(ids.values()), since)
    check(events)
    assert events[ids["wrong_secret"]]["org_id"] == org["id"]  # the key id's org, unverified
    assert events[ids["ip_not_allowed"]]["org_id"] == walled["id"]
    assert events[ids["unknown_key"]]["org_id"] is None
    assert events[ids["malformed_key"]]["org_id"] is None
    # The served request is no security event.
    listed = security_events(gateway.admin, **{"from": since})
    assert served.headers["x-request-id"] not in {e["id"] for e in listed}
    # Lookups by org and by key find them.
    by_org = security_events(gateway.admin, org_id=walled["id"], **{"from": since})
    assert [e["id"] for e in by_org] == [ids["ip_not_allowed"]]
    key_id = keys.parse_key(key).key_id
    by_key = security_events(gateway.admin, key_id=key_id, **{"from": since})
    assert ids["wrong_secret"] in {e["id"] for e in by_key}

    # The request log: the served request and the refused one of a verified key, no address.
    logged = gateway.wait_for_records(org["id"], 1) + gateway.wait_for_records(walled["id"], 1)
    assert {r["id"] for r in logged} == {served.headers["x-request-id"], ids["ip_not_allowed"]}
    for record in logged:
        assert "client_ip" not in record
        assert LOOPBACK not in json.dumps(record)


def test_an_edge_apart_ships_its_security_events(tmp_path: Path, simulator: Simulator) -> None:
    # Waiting for the policy below costs failed authentications: not to be throttled for.
    cluster = Cluster(
        tmp_path, simulator, env={"NEXTAPI_AUTH_FAILURES_PER_IP_PER_MINUTE": "100000"}
    )
    since = a_moment_ago()
    try:
        edge_url = cluster.edge()
        key = cluster.customer()
        org_id = cluster.org_id
        walled = cluster.admin.post(
            "/v1/orgs",
            json={"name": "walled", "email": "w@example.com", "allowed_ips": ["10.0.0.1"]},
        ).json()
        walled_key = cluster.admin.post(f"/v1/orgs/{walled['id']}/keys", json={"name": "k"})
        # Both keys must have reached the edge's snapshot (a long poll away).
        deadline = time.monotonic() + 10
        while get_as(edge_url, walled_key.json()["key"]).status_code != 403:
            assert time.monotonic() < deadline, "the policy never reached the edge"
            time.sleep(0.05)
        while get_as(edge_url, key).status_code != 200:
            assert time.monotonic() < deadline, "the policy never reached the edge"
            time.sleep(0.05)

        ids, check = refuse_four_ways(edge_url, key, walled_key.json()["key"])
        events = wait_for_events(cluster.admin, set(ids.values()), since)
        check(events)
        assert events[ids["wrong_secret"]]["org_id"] == org_id
        assert events[ids["ip_not_allowed"]]["org_id"] == walled["id"]
    finally:
        cluster.stop()
