"""Rate limits per key and per org, daily limits, limit changes, and failed-auth throttling."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from proxy.core import keys
from tests.e2e.harness import TEXT_CREATE, Gateway, Simulator

TASKS = "/api/v3/contents/generations/tasks"


@pytest.fixture(autouse=True)
def fresh_minute() -> None:
    """Counters are sliding windows aligned to the clock's minutes: a test that counts N
    requests starts well inside a minute, so its requests all fall in one window."""
    if time.time() % 60 > 50:
        time.sleep(61 - time.time() % 60)


def client(gateway: Gateway, key: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.Client(base_url=gateway.edge_url, headers=headers, timeout=10)


def assert_rate_limited(response: httpx.Response, code: str = "RateLimitExceeded") -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == code
    assert int(response.headers["retry-after"]) >= 1
    for header in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"):
        assert header in response.headers


def test_key_requests_per_minute(gateway: Gateway, simulator: Simulator) -> None:
    org = gateway.create_org()
    key = gateway.create_key(org["id"], rate_limit={"requests_per_minute": 3})["key"]
    with client(gateway, key) as c:
        answers = [c.post(TASKS, params={"probe": "key-rpm"}, json=TEXT_CREATE) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert [a.headers["ratelimit-remaining"] for a in answers] == ["2", "1", "0"]
        assert all(a.headers["ratelimit-limit"] == "3" for a in answers)
        refused = c.post(TASKS, params={"probe": "key-rpm"}, json=TEXT_CREATE)
    assert_rate_limited(refused)
    assert refused.headers["ratelimit-remaining"] == "0"
    assert "key" in refused.json()["error"]["message"]
    # Refused requests cost the upstream nothing.
    relayed = [r for r in simulator.requests() if "key-rpm" in str(r["query"])]
    assert len(relayed) == 3


def test_org_requests_per_minute_across_keys(gateway: Gateway) -> None:
    org = gateway.create_org(rate_limit={"requests_per_minute": 4})
    first = gateway.create_key(org["id"])["key"]
    second = gateway.create_key(org["id"])["key"]
    with client(gateway, first) as a, client(gateway, second) as b:
        statuses = [c.get(TASKS).status_code for c in (a, b, a, b)]
        assert statuses == [200, 200, 200, 200]
        assert_rate_limited(a.get(TASKS))
        assert_rate_limited(b.get(TASKS))


def test_tightest_limit_wins(gateway: Gateway) -> None:
    org = gateway.create_org(rate_limit={"requests_per_minute": 100})
    key = gateway.create_key(org["id"], rate_limit={"requests_per_minute": 2})["key"]
    with client(gateway, key) as c:
        first = c.get(TASKS)
        assert first.headers["ratelimit-limit"] == "2"  # the key's window is the tighter
        c.get(TASKS)
        assert_rate_limited(c.get(TASKS))


def test_daily_limit(gateway: Gateway) -> None:
    org = gateway.create_org()
    key = gateway.create_key(org["id"], rate_limit={"requests_per_day": 2})["key"]
    with client(gateway, key) as c:
        assert [c.get(TASKS).status_code for _ in range(2)] == [200, 200]
        refused = c.get(TASKS)
    assert_rate_limited(refused)
    assert "per day" in refused.json()["error"]["message"]


def test_limit_changes_apply_within_one_second(gateway: Gateway) -> None:
    org = gateway.create_org()
    created = gateway.create_key(org["id"], rate_limit={"requests_per_minute": 1})
    with client(gateway, created["key"]) as c:
        assert c.get(TASKS).status_code == 200
        assert_rate_limited(c.get(TASKS))
        patched = gateway.admin.patch(
            f"/v1/keys/{created['id']}", json={"rate_limit": {"requests_per_minute": 50}}
        )
        assert patched.status_code == 200
        started = time.monotonic()
        while c.get(TASKS).status_code != 200:
            assert time.monotonic() - started < 1.0, "raised limit not applied within 1 s"


def test_bad_key_flood_is_throttled_while_a_good_key_works(
    simulator: Simulator, tmp_path: Path
) -> None:
    # A gateway of its own, with the shipped failed-auth limits (30 per address, 10 per key id).
    gateway = Gateway(
        tmp_path / "gw",
        simulator.url,
        simulator.api_key,
        env={"NEXTAPI_AUTH_FAILURES_PER_IP_PER_MINUTE": "30"},
    )
    try:
        _flood(gateway)
    finally:
        gateway.stop()


def _flood(gateway: Gateway) -> None:
    org = gateway.create_org()
    created = gateway.create_key(org["id"])
    good_key = created["key"]
    key_id = keys.parse_key(good_key).key_id
    with client(gateway, good_key) as good:
        assert good.get(TASKS).status_code == 200  # verified once, cached from now on

        stop = threading.Event()
        counts = {"401": 0, "429": 0, "other": 0}
        lock = threading.Lock()

        def flood(wrong_secret: bool) -> None:
            with httpx.Client(base_url=gateway.edge_url, timeout=10) as bad:
                while not stop.is_set():
                    presented = (
                        keys.format_key("live", key_id, keys.new_secret())
                        if wrong_secret
                        else keys.generate_key()[0]
                    )
                    status = bad.get(TASKS, headers={"Authorization": f"Bearer {presented}"})
                    bucket = (
                        str(status.status_code) if status.status_code in (401, 429) else "other"
                    )
                    with lock:
                        counts[bucket] += 1

        threads = [threading.Thread(target=flood, args=(n % 2 == 0,)) for n in range(4)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        good_latencies = []
        try:
            for _ in range(40):
                t0 = time.monotonic()
                assert good.get(TASKS).status_code == 200
                good_latencies.append(time.monotonic() - t0)
                time.sleep(0.02)
        finally:
            stop.set()
            for thread in threads:
                thread.join(10)
        elapsed = time.monotonic() - started
    flood_total = counts["401"] + counts["429"]
    print(
        f"\nbad-key flood: {flood_total / elapsed:.0f} bad requests/s absorbed "
        f"({counts['429']} throttled, {counts['401']} refused) while the good key answered "
        f"40 requests, slowest {max(good_latencies) * 1000:.1f} ms"
    )
    assert counts["other"] == 0
    assert counts["429"] > counts["401"]  # after the first few failures, no more hashing
    assert counts["401"] <= 30 + 10 + 5  # per-address budget + per-key budget, small slack


def test_key_hammering_its_limit_is_suspended_and_audited(simulator: Simulator, tmp_path) -> None:
    gw = Gateway(
        tmp_path / "gw",
        simulator.url,
        simulator.api_key,
        env={"NEXTAPI_SUSPEND_AFTER_RATE_LIMITED": "5"},
    )
    try:
        org = gw.create_org()
        created = gw.create_key(org["id"], rate_limit={"requests_per_minute": 1})
        with client(gw, created["key"]) as c:
            assert c.get(TASKS).status_code == 200
            for _ in range(6):
                assert_rate_limited(c.get(TASKS))
            deadline = time.monotonic() + 10
            while gw.admin.get(f"/v1/keys/{created['id']}").json()["status"] != "suspended":
                assert time.monotonic() < deadline, "key never suspended"
                time.sleep(0.05)
            # The suspension is committed, then published to the edge: a moment later it holds.
            deadline = time.monotonic() + 1
            while (refused := c.get(TASKS)).status_code == 429:
                assert time.monotonic() < deadline, "the suspension never reached the edge"
                time.sleep(0.02)
            assert refused.status_code == 401
            assert "suspended" in refused.json()["error"]["message"]
        audit = gw.admin.get("/v1/audit").json()["items"]
        suspension = next(e for e in audit if e["action"] == "key.suspend")
        assert suspension["actor"] == "system:abuse" and suspension["target"] == created["id"]
        assert suspension["detail"]["refused"] >= 5
        # What counted: refusals by the key's own limit, as their records say.
        limited = [r for r in gw.requests_log(org["id"]) if r["status"] == 429]
        assert len(limited) >= 5 and {r["limited_by"] for r in limited} == {"key"}

        # An admin lifts it; that is audited too, and the key works again at once.
        lifted = gw.admin.patch(f"/v1/keys/{created['id']}", json={"status": "active"})
        assert lifted.status_code == 200
        assert gw.admin.get("/v1/audit").json()["items"][0]["action"] == "key.unsuspend"
    finally:
        gw.stop()


def test_429s_the_customer_did_not_cause_never_suspend_its_key(
    simulator: Simulator, tmp_path: Path
) -> None:
    """The abuse rule counts only refusals by the key's and org's own limits. A full upstream
    queue (its 429s relayed), a model's cap and the account's concurrency cap are filled by
    everyone: well past the suspension threshold of them, the key stays active."""
    capped_model = "seedance-1-0-pro-fast-251015"
    gw = Gateway(
        tmp_path / "gw",
        simulator.url,
        simulator.api_key,
        env={
            "NEXTAPI_SUSPEND_AFTER_RATE_LIMITED": "5",
            "NEXTAPI_UPSTREAM_CONCURRENT_TASKS": "1",
            "NEXTAPI_MODEL_LIMITS": json.dumps({capped_model: {"requests_per_minute": 1}}),
        },
    )
    try:
        org, other = gw.create_org(), gw.create_org()
        created = gw.create_key(org["id"])
        other_key = gw.create_key(other["id"])["key"]
        refused: dict[str, str] = {}  # request id -> what refused it
        with client(gw, created["key"]) as c:
            # 1. The upstream's queue is full: it answers 429 itself, and the edge relays it.
            simulator.configure(max_queued=0)
            for _ in range(8):
                answer = c.post(TASKS, json=TEXT_CREATE)
                assert (
                    answer.status_code == 429 and answer.json()["error"]["code"] == "QuotaExceeded"
                )
                refused[answer.headers["x-request-id"]] = "upstream"
            simulator.configure(max_queued=120)
            # 2. The account's one upstream slot, taken by another org's task.
            with client(gw, other_key) as o:
                assert o.post(TASKS, json=TEXT_CREATE).status_code == 200
            for _ in range(8):
                answer = c.post(TASKS, json=TEXT_CREATE)
                assert_rate_limited(answer, "QuotaExceeded")
                refused[answer.headers["x-request-id"]] = "account"
            # 3. A model's cap, counted for every customer (its first create, admitted by the
            # cap, meets the full account instead).
            for _ in range(8):
                answer = c.post(TASKS, json={**TEXT_CREATE, "model": capped_model})
                assert answer.status_code == 429, answer.text
                code = answer.json()["error"]["code"]
                cause = "model" if code == "RateLimitExceeded" else "account"
                refused[answer.headers["x-request-id"]] = cause
        for cause in ("upstream", "model", "account"):
            assert sum(c == cause for c in refused.values()) >= 6, refused
        # Every refusal reached the control plane (the rule has seen them all) ...
        assert gw.wait_for_request_ids(org["id"], set(refused)) == set(refused)
        records = {r["id"]: r for r in gw.requests_log(org["id"])}
        assert {records[i]["status"] for i in refused} == {429}
        assert all(records[i]["limited_by"] is None for i in refused)
        # ... and the key is active, with no suspension in the audit log.
        assert gw.admin.get(f"/v1/keys/{created['id']}").json()["status"] == "active"
        audit = gw.admin.get("/v1/audit", params={"limit": 200}).json()["items"]
        assert not [e for e in audit if e["action"] == "key.suspend"]
    finally:
        simulator.configure(max_queued=120)
        gw.stop()


def test_guessing_a_key_id_never_locks_its_owner_out(simulator: Simulator, tmp_path: Path) -> None:
    """Wrong secrets for a key id are throttled per guessing address: an attacker who knows the
    id (it is printed in the key) cannot make the owner's correct secret answer 429 from another
    address, even past the key id's ceiling, when the guessers are slowed to one guess each.
    Every client here has a loopback address of its own (127.0.0.2, 127.0.0.3, …)."""
    ceiling = 25
    gateway = Gateway(
        tmp_path / "gw",
        simulator.url,
        simulator.api_key,
        env={
            "NEXTAPI_AUTH_FAILURES_PER_IP_PER_MINUTE": "30",
            "NEXTAPI_WRONG_SECRETS_PER_KEY_CEILING_PER_MINUTE": str(ceiling),
        },
    )

    def from_address(n: int, key: str) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=f"127.0.0.{n}")
        return httpx.Client(
            base_url=gateway.edge_url,
            transport=transport,
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )

    try:
        org = gateway.create_org()
        owner_key = gateway.create_key(org["id"])["key"]
        parsed = keys.parse_key(owner_key)
        assert parsed is not None
        wrong = keys.format_key(parsed.environment, parsed.key_id, keys.new_secret())

        def guesses(n: int, count: int) -> list[int]:
            with from_address(n, wrong) as guesser:
                return [guesser.get(TASKS).status_code for _ in range(count)]

        # One guesser: its own 10 wrong secrets a minute, then 429 for it alone ...
        assert guesses(2, 12) == [401] * 10 + [429] * 2
        # ... and the owner, from another address, is verified (its first use: not cached).
        with from_address(3, owner_key) as owner:
            assert owner.get(TASKS).status_code == 200
        # More guessers, until the key id has had more wrong secrets than its ceiling.
        assert guesses(4, 10) == [401] * 10
        # The 25th wrong secret fills the key id's ceiling: this guesser waits from then on.
        assert guesses(5, 10) == [401] * 5 + [429] * 5
        # A new guesser gets its one guess; from then on it waits like the others.
        assert guesses(6, 3) == [401, 429, 429]
        # The owner from yet another address with a secret the edge has not verified yet (a
        # rotation's new one): verified, not refused, while the key id is under attack.
        key_id = next(
            k["id"] for k in gateway.admin.get(f"/v1/orgs/{org['id']}/keys").json()["items"]
        )
        rotated = gateway.admin.post(f"/v1/keys/{key_id}/rotate", json={"grace_seconds": 0})
        assert rotated.status_code in (200, 201), rotated.text
        new_key = rotated.json()["key"]
        deadline = time.monotonic() + 10
        with from_address(7, new_key) as owner:
            while (answer := owner.get(TASKS)).status_code == 401:  # the rotation reaches the edge
                assert time.monotonic() < deadline, answer.text
                time.sleep(0.05)
            assert answer.status_code == 200, answer.text
    finally:
        gateway.stop()
