"""The edge's refusals, relay and metering, driven over HTTP against the real processes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import TEXT_CREATE, Gateway, Simulator

TASKS = "/api/v3/contents/generations/tasks"


def edge(gateway: Gateway, key: str | None = None, **headers: str) -> httpx.Client:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.Client(base_url=gateway.edge_url, headers=headers, timeout=15)


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["x-request-id"].startswith("req_")
    error = response.json()["error"]
    assert error["code"] == code
    assert set(error) == {"code", "message", "param", "type"}
    return error


def relayed_since(simulator: Simulator, marker: str) -> list[dict]:
    return [r for r in simulator.requests() if marker in json.dumps(r)]


@pytest.fixture
def customer(gateway: Gateway) -> tuple[dict, str]:
    org = gateway.create_org()
    return org, gateway.create_key(org["id"])["key"]


def test_every_answer_carries_a_request_id(gateway: Gateway, customer: tuple[dict, str]) -> None:
    _, key = customer
    with edge(gateway, key) as client:
        ok = client.post(TASKS, json=TEXT_CREATE)
        assert ok.status_code == 200
        assert ok.headers["x-request-id"].startswith("req_")
        assert ok.headers["x-upstream-request-id"]
        listed = client.get(TASKS)
        assert listed.headers["x-request-id"] != ok.headers["x-request-id"]


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic dXNlcjpwYXNz", "Bearer", "Bearer nk_live_short", "Bearer sk-openai-style"],
)
def test_missing_or_malformed_key_is_401(gateway: Gateway, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    with edge(gateway, **headers) as client:
        response = client.post(TASKS, json=TEXT_CREATE)
    assert_envelope(response, 401, "AuthenticationError")
    assert response.headers["x-should-retry"] == "false"


def test_wrong_secret_and_unknown_key_are_401(gateway: Gateway, customer: tuple) -> None:
    from proxy.core import keys

    _, key = customer
    key_id = keys.parse_key(key).key_id
    wrong = keys.format_key("live", key_id, keys.new_secret())
    unknown, _ = keys.generate_key("live")
    for presented in (wrong, unknown):
        with edge(gateway, presented) as client:
            assert_envelope(client.get(TASKS), 401, "AuthenticationError")


def test_revoked_key_refused_within_one_second(gateway: Gateway) -> None:
    org = gateway.create_org()
    created = gateway.create_key(org["id"])
    with edge(gateway, created["key"]) as client:
        assert client.get(TASKS).status_code == 200
        revoked = gateway.admin.delete(f"/v1/keys/{created['id']}")
        assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
        started = time.monotonic()
        while client.get(TASKS).status_code == 200:
            assert time.monotonic() - started < 1.0, "revoked key still accepted after 1 s"
        error = assert_envelope(client.get(TASKS), 401, "AuthenticationError")
        assert "revoked" in error["message"]


def test_rotated_key_old_secret_honoured_for_grace(gateway: Gateway) -> None:
    org = gateway.create_org()
    created = gateway.create_key(org["id"])
    old = created["key"]
    rotated = gateway.admin.post(f"/v1/keys/{created['id']}/rotate", json={"grace_seconds": 2})
    assert rotated.status_code == 200
    new = rotated.json()["key"]
    assert new != old and rotated.json()["id"] == created["id"]
    with edge(gateway, old) as old_client, edge(gateway, new) as new_client:
        assert old_client.get(TASKS).status_code == 200
        assert new_client.get(TASKS).status_code == 200
        deadline = time.monotonic() + 5
        while old_client.get(TASKS).status_code == 200:
            assert time.monotonic() < deadline, "old secret outlived its grace period"
            time.sleep(0.1)
        assert_envelope(old_client.get(TASKS), 401, "AuthenticationError")
        assert new_client.get(TASKS).status_code == 200
    # Without grace the old secret stops at once.
    again = gateway.admin.post(f"/v1/keys/{created['id']}/rotate", json={})
    with edge(gateway, new) as client:
        assert_envelope(client.get(TASKS), 401, "AuthenticationError")
    with edge(gateway, again.json()["key"]) as client:
        assert client.get(TASKS).status_code == 200


def test_ip_allowlists_of_key_and_org(gateway: Gateway) -> None:
    org = gateway.create_org()
    outside = gateway.create_key(org["id"], allowed_ips=["10.0.0.0/8", "2001:db8::/32"])
    inside = gateway.create_key(org["id"], allowed_ips=["127.0.0.0/8"])
    with edge(gateway, outside["key"]) as client:
        assert_envelope(client.get(TASKS), 403, "AccessDenied")
    with edge(gateway, inside["key"]) as client:
        assert client.get(TASKS).status_code == 200
    # The org's list applies too, and a change applies at the edge at once.
    patched = gateway.admin.patch(f"/v1/orgs/{org['id']}", json={"allowed_ips": ["192.0.2.0/24"]})
    assert patched.status_code == 200
    with edge(gateway, inside["key"]) as client:
        assert_envelope(client.get(TASKS), 403, "AccessDenied")
    gateway.admin.patch(f"/v1/orgs/{org['id']}", json={"allowed_ips": []})
    with edge(gateway, inside["key"]) as client:
        assert client.get(TASKS).status_code == 200


def test_spoofed_forwarded_for_from_untrusted_peer_is_ignored(gateway: Gateway) -> None:
    org = gateway.create_org()
    key = gateway.create_key(org["id"], allowed_ips=["203.0.113.0/24"])["key"]
    with edge(gateway, key, **{"X-Forwarded-For": "203.0.113.5"}) as client:
        assert_envelope(client.get(TASKS), 403, "AccessDenied")


def test_forwarded_for_honoured_from_a_trusted_proxy(simulator: Simulator, tmp_path: Path) -> None:
    gw = Gateway(
        tmp_path / "gw", simulator.url, simulator.api_key, "--trusted-proxies", "127.0.0.1"
    )
    try:
        org = gw.create_org()
        key = gw.create_key(org["id"], allowed_ips=["203.0.113.0/24"])["key"]
        with edge(gw, key, **{"X-Forwarded-For": "203.0.113.5"}) as client:
            assert client.get(TASKS).status_code == 200
        with edge(gw, key, **{"X-Forwarded-For": "198.51.100.7"}) as client:
            assert_envelope(client.get(TASKS), 403, "AccessDenied")
    finally:
        gw.stop()


def test_unknown_routes_are_404_and_never_relayed(
    gateway: Gateway, simulator: Simulator, customer: tuple
) -> None:
    _, key = customer
    with edge(gateway, key) as client:
        for method, path in [
            ("GET", "/api/v3/chat/completions?probe=unknown-route-1"),
            ("GET", "/_sim/requests?probe=unknown-route-1"),
            ("PUT", f"{TASKS}?probe=unknown-route-1"),
            ("GET", "/?probe=unknown-route-1"),
        ]:
            assert_envelope(client.request(method, path), 404, "NotFound")
    assert relayed_since(simulator, "unknown-route-1") == []


def test_malformed_json_is_400_and_not_relayed(
    gateway: Gateway, simulator: Simulator, customer: tuple
) -> None:
    _, key = customer
    with edge(gateway, key) as client:
        bad = client.post(
            TASKS + "?probe=malformed-json",
            content=b'{"model": "x", "content": [',
            headers={"Content-Type": "application/json"},
        )
        assert_envelope(bad, 400, "InvalidParameter")
        missing = client.post(TASKS + "?probe=malformed-json", json={"content": [{"type": "text"}]})
        assert assert_envelope(missing, 400, "MissingParameter")["param"] == "model"
    assert relayed_since(simulator, "malformed-json") == []


def test_oversized_body_is_413_and_not_relayed(
    gateway: Gateway, simulator: Simulator, customer: tuple
) -> None:
    _, key = customer
    image = "data:image/png;base64," + "A" * (10 * 2**20 + 1)
    body = {**TEXT_CREATE, "content": [{"type": "image_url", "image_url": {"url": image}}]}
    with edge(gateway, key) as client:
        response = client.post(TASKS + "?probe=oversized", json=body)
        assert_envelope(response, 413, "RequestTooLarge")

        def chunks():
            yield json.dumps(body).encode()

        chunked = client.post(TASKS + "?probe=oversized", content=chunks())
        assert_envelope(chunked, 413, "RequestTooLarge")
    assert relayed_since(simulator, "oversized") == []


def test_upstream_5xx_becomes_502(gateway: Gateway, simulator: Simulator, customer: tuple) -> None:
    _, key = customer
    simulator.configure(fixed_status=500)
    with edge(gateway, key) as client:
        error = assert_envelope(client.post(TASKS, json=TEXT_CREATE), 502, "UpstreamUnavailable")
    assert "500" in error["message"]


def test_upstream_unreachable_is_502(simulator: Simulator, tmp_path: Path) -> None:
    from launch.serving import bind

    sock = bind("127.0.0.1", 0)  # a port nobody answers on once closed
    port = sock.getsockname()[1]
    sock.close()
    gw = Gateway(tmp_path / "gw", f"http://127.0.0.1:{port}", "irrelevant")
    try:
        org = gw.create_org()
        key = gw.create_key(org["id"])["key"]
        with edge(gw, key) as client:
            assert_envelope(client.post(TASKS, json=TEXT_CREATE), 502, "UpstreamUnavailable")
    finally:
        gw.stop()


def test_upstream_timeout_is_504(simulator: Simulator, tmp_path: Path) -> None:
    gw = Gateway(tmp_path / "gw", simulator.url, simulator.api_key, "--upstream-timeout", "0.5")
    try:
        org = gw.create_org()
        key = gw.create_key(org["id"])["key"]
        simulator.configure(latency_ms=1500)
        with edge(gw, key) as client:
            assert_envelope(client.post(TASKS, json=TEXT_CREATE), 504, "UpstreamTimeout")
    finally:
        simulator.configure(latency_ms=0)
        gw.stop()


def test_relay_sends_the_upstream_key_and_drops_spoofable_headers(
    gateway: Gateway, simulator: Simulator, customer: tuple
) -> None:
    _, key = customer
    headers = {
        "X-Forwarded-For": "6.6.6.6",
        "X-Real-IP": "6.6.6.6",
        "Forwarded": "for=6.6.6.6",
        "Cookie": "session=abc",
        "X-Client-Request-Id": "client-req-77",
    }
    with edge(gateway, key, **headers) as client:
        response = client.post(TASKS, params={"probe": "header-scrub"}, json=TEXT_CREATE)
    assert response.status_code == 200
    assert simulator.api_key not in response.text
    assert simulator.api_key not in json.dumps(dict(response.headers))
    (seen,) = relayed_since(simulator, "header-scrub")
    sent = seen["headers"]
    assert sent["authorization"] == f"Bearer {simulator.api_key}"
    assert key not in json.dumps(sent)
    for dropped in ("x-forwarded-for", "x-real-ip", "forwarded", "cookie"):
        assert dropped not in sent
    assert sent["x-client-request-id"] == "client-req-77"


def test_one_usage_record_per_request_with_only_the_promised_fields(
    gateway: Gateway, customer: tuple
) -> None:
    org, key = customer
    prompt = "a secret prompt about a blue whale"
    body = {"model": "seedance-1-0-pro-250528", "content": [{"type": "text", "text": prompt}]}
    with edge(gateway, key) as client:
        raw = json.dumps(body).encode()
        created = client.post(TASKS, content=raw, headers={"Content-Type": "application/json"})
        assert created.status_code == 200
        task_id = created.json()["id"]
        assert client.get(f"{TASKS}/{task_id}").status_code == 200
        assert client.get("/nope").status_code == 404
    # The 404 is recorded too, but before any key check: it is tied to no org.
    records = gateway.wait_for_records(org["id"], 2)
    assert [r["route"] for r in records] == [f"GET {TASKS}/{{id}}", f"POST {TASKS}"]
    create = records[-1]
    assert create["id"] == created.headers["x-request-id"]
    assert create["status"] == 200 and create["model"] == "seedance-1-0-pro-250528"
    # The create's record carries the credits reserved for it: 1080p (the 1.0 pro default)
    # 16:9, 5 s at 2.5 credits per million tokens = 246,840 tokens -> 617,100 micro-credits.
    assert create["task_id"] == task_id and create["credits"] == 617_100
    assert create["bytes_in"] == len(raw)
    assert create["latency_ms"] >= create["upstream_latency_ms"] > 0
    assert create["ts"].endswith("Z")
    expected = {
        "id",
        "ts",
        "org_id",
        "key_id",
        "method",
        "route",
        "status",
        "latency_ms",
        "upstream_latency_ms",
        "bytes_in",
        "bytes_out",
        "credits",
        "model",
        "task_id",
        "limited_by",  # which of the customer's own limits answered 429, if one did
    }
    for record in records:
        assert set(record) == expected
        assert prompt not in json.dumps(record) and "127.0.0.1" not in json.dumps(record)


def test_request_log_pages_newest_first(gateway: Gateway, customer: tuple) -> None:
    org, key = customer
    with edge(gateway, key) as client:
        ids = [client.get(TASKS).headers["x-request-id"] for _ in range(7)]
    gateway.wait_for_records(org["id"], 7)
    first = gateway.admin.get(f"/v1/orgs/{org['id']}/requests", params={"limit": 3}).json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    everything = gateway.requests_log(org["id"], limit=3)
    assert [r["id"] for r in everything] == list(reversed(ids))


def test_secrets_never_reach_the_log(
    gateway: Gateway, customer: tuple, simulator: Simulator
) -> None:
    _, key = customer
    with edge(gateway, key) as client:
        client.post(TASKS, json=TEXT_CREATE)
    output = gateway.process.output()
    assert key not in output
    assert simulator.api_key not in output
    assert gateway.admin_token not in output
