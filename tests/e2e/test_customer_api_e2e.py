"""The customer API end to end: orgs and people provisioned by Clerk-shaped webhooks (signed by
Svix's library), Clerk session tokens signed by a key the test serves as a JWKS, against a real
`run_proxy.py`: who is signed in, keys an admin makes that work at the edge, members who only
read, another org's ids answering 404 on every route, and the tokens that are refused."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.clerk_tokens import APP, Jwks, SigningKey
from tests.e2e.customers import SECRET, World
from tests.e2e.harness import Gateway, Simulator

TASKS = "/api/v3/contents/generations/tasks"
KEY_ROUTES = [  # (method, path under /v1/me/keys/{id}, body)
    ("GET", "", None),
    ("PATCH", "", {"name": "mine now"}),
    ("POST", "/rotate", {}),
    ("DELETE", "", None),
]


@pytest.fixture(scope="module")
def world(simulator: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    jwks, key = Jwks(), SigningKey("ins_key_1")
    jwks.keys = [key.jwk()]
    gw = Gateway(
        tmp_path_factory.mktemp("customers"),
        simulator.url,
        simulator.api_key,
        env={
            "NEXTAPI_CLERK_WEBHOOK_SECRET": SECRET,
            "NEXTAPI_CLERK_JWKS_URL": jwks.url,
            "NEXTAPI_CLERK_AUTHORIZED_PARTIES": f"{APP},https://other-app.example",
        },
    )
    found = World(gw, key)
    found.provision("org_ca", {"user_a1": "admin", "user_a2": "member"})
    found.provision("org_cb", {"user_b1": "admin"})
    yield found
    gw.stop()
    jwks.close()


def edge_status(gw: Gateway, secret: str) -> int:
    response = httpx.get(
        gw.base_url.removesuffix("/api/v3") + TASKS,
        headers={"Authorization": f"Bearer {secret}"},
        timeout=10,
    )
    return response.status_code


def test_me_names_the_user_org_and_role(world: World) -> None:
    with (
        world.me("user_a1", "org_ca", "admin") as admin,
        world.me("user_a2", "org_ca", "member") as member,
    ):
        mine = admin.get("/v1/me")
        assert mine.status_code == 200, mine.text
        body = mine.json()
        assert body["user"] == {
            "id": "user_a1",
            "name": "Ada user_a1",
            "email": "user_a1@example.com",
        }
        assert body["org"]["id"] == world.orgs["org_ca"] and body["org"]["external_id"] == "org_ca"
        assert body["role"] == "admin"
        assert member.get("/v1/me").json()["role"] == "member"
    # The lesser of the two words: a member whose token still says admin is a member, and an
    # admin whose token already says member (a demotion the webhooks have not brought) too.
    with world.me("user_a2", "org_ca", "admin") as stale:
        assert stale.get("/v1/me").json()["role"] == "member"
    with world.me("user_a1", "org_ca", "member") as demoted:
        assert demoted.get("/v1/me").json()["role"] == "member"
        assert demoted.post("/v1/me/keys", json={"name": "x"}).status_code == 403


def test_an_admins_key_works_at_the_edge_until_revoked(world: World) -> None:
    with world.me("user_a1", "org_ca", "admin") as admin:
        created = admin.post("/v1/me/keys", json={"name": "ci"})
        assert created.status_code == 201, created.text
        key = created.json()
        assert key["org_id"] == world.orgs["org_ca"] and key["key"].startswith("nk_live_")
        deadline = time.monotonic() + 5
        while edge_status(world.gw, key["key"]) != 200:  # the snapshot reaches the edge
            assert time.monotonic() < deadline, "the new key never worked at the edge"
            time.sleep(0.05)
        assert [k["id"] for k in admin.get("/v1/me/keys").json()["items"]] == [key["id"]]
        rotated = admin.post(f"/v1/me/keys/{key['id']}/rotate", json={"grace_seconds": 0})
        assert rotated.status_code == 200, rotated.text
        assert admin.delete(f"/v1/me/keys/{key['id']}").json()["status"] == "revoked"
        deadline = time.monotonic() + 5
        while edge_status(world.gw, rotated.json()["key"]) != 401:
            assert time.monotonic() < deadline, "the revoked key still works at the edge"
            time.sleep(0.05)
    audit = world.gw.admin.get("/v1/audit", params={"limit": 50}).json()["items"]
    assert any(
        entry["actor"] == "clerk:user_a1" and entry["action"] == "key.create" for entry in audit
    ), audit[:5]


def test_members_read_and_never_write(world: World) -> None:
    with world.me("user_a1", "org_ca", "admin") as admin:
        key = admin.post("/v1/me/keys", json={"name": "shared"}).json()
    with world.me("user_a2", "org_ca", "member") as member:
        assert member.get("/v1/me/keys").status_code == 200
        assert member.get(f"/v1/me/keys/{key['id']}").json()["name"] == "shared"
        for method, path, body in [("POST", "", {"name": "x"}), *KEY_ROUTES[1:]]:
            url = (
                "/v1/me/keys"
                if method == "POST" and path == ""
                else f"/v1/me/keys/{key['id']}{path}"
            )
            refused = member.request(method, url, json=body)
            assert refused.status_code == 403, (method, url, refused.text)
            assert "admins" in refused.json()["error"]["message"]


def test_another_orgs_key_is_not_found_on_every_route(world: World) -> None:
    with world.me("user_a1", "org_ca", "admin") as a_admin:
        theirs = a_admin.post("/v1/me/keys", json={"name": "a's"}).json()
    with world.me("user_b1", "org_cb", "admin") as b_admin:
        assert theirs["id"] not in [k["id"] for k in b_admin.get("/v1/me/keys").json()["items"]]
        for method, path, body in KEY_ROUTES:
            answer = b_admin.request(method, f"/v1/me/keys/{theirs['id']}{path}", json=body)
            assert answer.status_code == 404, (method, path, answer.text)
    # ... and it was left alone.
    with world.me("user_a1", "org_ca", "admin") as a_admin:
        assert a_admin.get(f"/v1/me/keys/{theirs['id']}").json()["status"] == "active"
    # A member of A naming org B in a token signed for them is no member of B.
    with world.me("user_a1", "org_cb", "admin") as pretender:
        refused = pretender.get("/v1/me/keys")
        assert refused.status_code == 403 and "not a member" in refused.json()["error"]["message"]


def test_keys_stay_within_the_orgs_allowlist_and_limits(world: World) -> None:
    org_id = world.orgs["org_cb"]
    patched = world.gw.admin.patch(
        f"/v1/orgs/{org_id}",
        json={"allowed_ips": ["127.0.0.0/8"], "rate_limit": {"requests_per_minute": 100}},
    )
    assert patched.status_code == 200, patched.text
    with world.me("user_b1", "org_cb", "admin") as admin:
        outside = admin.post("/v1/me/keys", json={"name": "k", "allowed_ips": ["10.0.0.0/8"]})
        assert outside.status_code == 400 and "outside" in outside.json()["error"]["message"]
        above = admin.post(
            "/v1/me/keys", json={"name": "k", "rate_limit": {"requests_per_minute": 101}}
        )
        assert above.status_code == 400 and "100" in above.json()["error"]["message"]
        inside = admin.post(
            "/v1/me/keys",
            json={
                "name": "k",
                "allowed_ips": ["127.0.0.1/32"],
                "rate_limit": {"requests_per_minute": 50},
            },
        )
        assert inside.status_code == 201, inside.text
        status = admin.patch(f"/v1/me/keys/{inside.json()['id']}", json={"status": "active"})
        assert status.status_code == 400 and "revoke" in status.json()["error"]["message"]


def test_tokens_that_are_refused_say_why(world: World) -> None:
    now = int(time.time())
    foreign = SigningKey("ins_key_1")  # another instance's key, the same kid
    cases = [
        ({}, None, 401, "Sign in"),
        (dict(exp=now - 60), None, 401, "expired"),
        (dict(azp="https://evil.example"), None, 401, "not authorized"),
        ({}, foreign, 401, "signature"),
        (dict(o=None), None, 403, "none active"),
        (dict(o={"id": "org_unknown", "rol": "admin"}), None, 403, "not provisioned"),
    ]
    for claims, signer, status, words in cases:
        headers = {}
        if claims or signer:
            token = (signer or world.key).sign(
                sub="user_a1", **{"o": {"id": "org_ca", "rol": "admin"}, **claims}
            )
            headers = {"Authorization": f"Bearer {token}"}
        answer = httpx.get(world.gw.control_url + "/v1/me", headers=headers, timeout=10)
        assert answer.status_code == status, (claims, answer.text)
        assert words in answer.json()["error"]["message"], (claims, answer.text)
    # The __session cookie works as the bearer token does.
    token = world.key.sign(sub="user_a1", o={"id": "org_ca", "rol": "admin"})
    answer = httpx.get(world.gw.control_url + "/v1/me", cookies={"__session": token}, timeout=10)
    assert answer.status_code == 200 and answer.json()["user"]["id"] == "user_a1"


def test_reads_are_the_orgs_own(world: World) -> None:
    a_org = world.orgs["org_ca"]
    granted = world.gw.admin.post(f"/v1/orgs/{a_org}/credits", json={"amount": 7_000_000})
    assert granted.status_code == 201, granted.text
    with world.me("user_a1", "org_ca", "admin") as admin:
        key = admin.post("/v1/me/keys", json={"name": "reads"}).json()
        deadline = time.monotonic() + 5
        while edge_status(world.gw, key["key"]) != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    ids = {}
    with world.me("user_a2", "org_ca", "member") as member:
        balance = member.get("/v1/me/balance")
        assert balance.status_code == 200, balance.text
        assert balance.json()["available"] == 7_000_000  # the grant: org A's, no other
        ledger = member.get("/v1/me/ledger").json()["items"]
        assert [entry["amount"] for entry in ledger] == [7_000_000]
        deadline = time.monotonic() + 10
        while not (ids := {r["key_id"] for r in member.get("/v1/me/requests").json()["items"]}):
            assert time.monotonic() < deadline, "the edge's request never reached the log"
            time.sleep(0.1)
        assert ids <= {k["id"] for k in member.get("/v1/me/keys").json()["items"]}
        csv = member.get("/v1/me/requests", params={"format": "csv"})
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        assert member.get("/v1/me/tasks").status_code == 200
        assert member.get("/v1/me/usage", params={"group_by": "day"}).status_code == 200
        assert member.get("/v1/me/export").status_code == 403  # the bundle: admins only
    with world.me("user_b1", "org_cb", "admin") as other:
        assert other.get("/v1/me/balance").json()["available"] == 0
        assert not other.get("/v1/me/requests").json()["items"]
        assert not other.get("/v1/me/ledger").json()["items"]
    with world.me("user_a1", "org_ca", "admin") as admin:
        bundle = admin.get("/v1/me/export")
        assert bundle.status_code == 200 and bundle.content[:2] == b"PK", bundle.headers


def test_webhooks_of_another_org_are_not_found(world: World) -> None:
    with world.me("user_a1", "org_ca", "admin") as admin:
        made = admin.post("/v1/me/webhooks", json={"url": "https://hooks.example/a"})
        assert made.status_code == 201, made.text
        webhook = made.json()
        assert webhook["secret"].startswith("whsec_")
    routes = [
        ("GET", "", None),
        ("PATCH", "", {"url": "https://hooks.example/b"}),
        ("POST", "/rotate", {}),
        ("GET", "/deliveries", None),
        ("POST", "/deliveries/evt_none/redeliver", None),
        ("DELETE", "", None),
    ]
    with world.me("user_b1", "org_cb", "admin") as other:
        assert webhook["id"] not in [w["id"] for w in other.get("/v1/me/webhooks").json()["items"]]
        for method, path, body in routes:
            answer = other.request(method, f"/v1/me/webhooks/{webhook['id']}{path}", json=body)
            assert answer.status_code == 404, (method, path, answer.text)
    with world.me("user_a2", "org_ca", "member") as member:
        assert member.get(f"/v1/me/webhooks/{webhook['id']}").status_code == 200
        refused = member.post("/v1/me/webhooks", json={"url": "https://hooks.example/c"})
        assert refused.status_code == 403
    with world.me("user_a1", "org_ca", "admin") as admin:
        assert admin.get(f"/v1/me/webhooks/{webhook['id']}").json()["url"] == webhook["url"]


def test_an_admin_closes_the_account_only_when_confirmed(world: World) -> None:
    org_id = world.provision("org_cc", {"user_c1": "admin", "user_c2": "member"})
    with world.me("user_c2", "org_cc", "member") as member:
        assert member.post("/v1/me/close", json={"confirm": org_id}).status_code == 403
    with world.me("user_c1", "org_cc", "admin") as admin:
        unconfirmed = admin.post("/v1/me/close", json={})
        assert unconfirmed.status_code == 400 and org_id in unconfirmed.json()["error"]["message"]
        closed = admin.post("/v1/me/close", json={"confirm": org_id})
        assert closed.status_code == 200, closed.text
        assert closed.json()["status"] == "closed"
        after = admin.get("/v1/me")
        assert after.status_code == 403 and "closed" in after.json()["error"]["message"]
    assert world.gw.admin.get(f"/v1/orgs/{org_id}").json()["status"] == "closed"


def test_settings_retention_within_the_admins_bounds_and_a_personal_opt_out(world: World) -> None:
    org_id = world.orgs["org_ca"]
    bounds = world.gw.admin.patch(
        f"/v1/orgs/{org_id}", json={"video_retention_min_days": 3, "video_retention_max_days": 14}
    )
    assert bounds.status_code == 200, bounds.text
    upside_down = world.gw.admin.patch(f"/v1/orgs/{org_id}", json={"video_retention_min_days": 20})
    assert upside_down.status_code == 400
    with (
        world.me("user_a1", "org_ca", "admin") as admin,
        world.me("user_a2", "org_ca", "member") as member,
    ):
        assert admin.get("/v1/me/settings").json() == {
            "video_retention_days": 7,
            "video_retention_min_days": 3,
            "video_retention_max_days": 14,
            "analytics_opt_out": False,
        }
        too_long = admin.patch("/v1/me/settings", json={"video_retention_days": 15})
        assert too_long.status_code == 400 and "3 to 14" in too_long.json()["error"]["message"]
        assert admin.patch("/v1/me/settings", json={"nope": 1}).status_code == 400
        changed = admin.patch("/v1/me/settings", json={"video_retention_days": 14})
        assert changed.status_code == 200 and changed.json()["video_retention_days"] == 14
        assert world.gw.admin.get(f"/v1/orgs/{org_id}").json()["video_retention_days"] == 14
        # A member chooses only for themselves: analytics, not the org's retention.
        assert member.patch("/v1/me/settings", json={"video_retention_days": 5}).status_code == 403
        opted = member.patch("/v1/me/settings", json={"analytics_opt_out": True})
        assert opted.status_code == 200 and opted.json()["analytics_opt_out"] is True
        assert admin.get("/v1/me/settings").json()["analytics_opt_out"] is False  # theirs only
    audit = world.gw.admin.get("/v1/audit", params={"actor": "clerk:user_a2"}).json()["items"]
    assert [entry["action"] for entry in audit] == ["customer.analytics"]
