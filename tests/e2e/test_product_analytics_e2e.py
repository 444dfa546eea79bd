"""Product analytics end to end: a real `run_proxy.py` with NEXTAPI_POSTHOG_KEY set sends the
customer API's events with PostHog's own client to a capture endpoint on loopback (standing in
for PostHog's `/batch/`): anonymized ids, no email, no key material, nothing for a person who
opted out or an org that objected to optional processing."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests import clerk_events as ce
from tests.clerk_tokens import APP, Jwks, SigningKey
from tests.e2e.harness import Gateway, Simulator

SECRET = ce.signing_secret()
POSTHOG_KEY = "phc_test_project_key"


class Capture:
    """PostHog's capture API on loopback: the batches the client posts, and their raw bytes."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.events: list[dict[str, Any]] = []
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                served.raw.append(body)
                batch = json.loads(body)
                assert batch.get("api_key") == POSTHOG_KEY
                served.events.extend(batch.get("batch", []))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status": 1}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.events) < count:
            assert time.monotonic() < deadline, f"{len(self.events)} of {count} events arrived"
            time.sleep(0.05)
        return self.events


@pytest.fixture(scope="module")
def stack(simulator: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    capture, jwks, key = Capture(), Jwks(), SigningKey("ins_a")
    jwks.keys = [key.jwk()]
    gw = Gateway(
        tmp_path_factory.mktemp("analytics"),
        simulator.url,
        simulator.api_key,
        env={
            "NEXTAPI_CLERK_WEBHOOK_SECRET": SECRET,
            "NEXTAPI_CLERK_JWKS_URL": jwks.url,
            "NEXTAPI_CLERK_AUTHORIZED_PARTIES": APP,
            "NEXTAPI_POSTHOG_KEY": POSTHOG_KEY,
            "NEXTAPI_POSTHOG_HOST": capture.url,
        },
    )
    for clerk_org, user in (("org_pa", "user_pa"), ("org_pb", "user_pb")):
        person = ("Grace", "Hopper", f"{user}@example.com", "org:admin")
        ce.provision(gw.control_url, SECRET, clerk_org, {user: person})
    yield gw, key, capture
    gw.stop()
    jwks.close()
    capture.server.shutdown()


def client(gw: Gateway, key: SigningKey, user: str, org: str) -> httpx.Client:
    token = key.sign(sub=user, o={"id": org, "rol": "admin"})
    return httpx.Client(
        base_url=gw.control_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def test_events_are_anonymous_and_carry_nothing_personal(stack: Any) -> None:
    gw, key, capture = stack
    with client(gw, key, "user_pa", "org_pa") as me:
        created = me.post("/v1/me/keys", json={"name": "analytics"}).json()
        me.post(f"/v1/me/keys/{created['id']}/rotate", json={})
        assert me.get("/v1/me/keys").status_code == 200  # a read: no event
    events = capture.wait(2)
    assert [e["event"] for e in events] == ["create_key", "rotate_key"]
    ids = {e["distinct_id"] for e in events}
    assert len(ids) == 1
    (anonymous,) = ids
    assert len(anonymous) == 32 and "user_pa" not in anonymous
    for event in events:
        assert set(event["properties"]) - {"$lib", "$lib_version", "$geoip_disable"} >= {
            "status",
            "role",
        }
    everything = b"".join(capture.raw)
    for secret in (b"user_pa", b"user_pa@example.com", b"Grace", created["key"].encode(), b"nk_"):
        assert secret not in everything, secret
    with client(gw, key, "user_pb", "org_pb") as other:
        other.post("/v1/me/keys", json={"name": "b"})
    other_event = capture.wait(3)[2]
    assert other_event["distinct_id"] != anonymous  # another person, another id


def test_nothing_for_who_opted_out_or_an_org_that_objected(stack: Any) -> None:
    gw, key, capture = stack
    with client(gw, key, "user_pa", "org_pa") as me:
        before = len(capture.wait(0))
        assert me.patch("/v1/me/settings", json={"analytics_opt_out": True}).status_code == 200
        me.post("/v1/me/keys", json={"name": "quiet"})
        assert me.patch("/v1/me/settings", json={"analytics_opt_out": False}).status_code == 200
        events = capture.wait(before + 1)  # the opt-in's own event, nothing before it
        assert [e["event"] for e in events[before:]] == ["patch_settings"]
    org_b = gw.admin.get("/v1/orgs", params={"q": "org_pb"}).json()["items"][0]["id"]
    objected = gw.admin.patch(f"/v1/orgs/{org_b}", json={"processing_objection": True})
    assert objected.status_code == 200, objected.text
    with client(gw, key, "user_pb", "org_pb") as other:
        other.post("/v1/me/keys", json={"name": "objected"})
    with client(gw, key, "user_pa", "org_pa") as me:
        me.post("/v1/me/keys", json={"name": "marker"})  # flushed after any event of B's
    events = capture.wait(before + 2)
    assert [e["event"] for e in events[before + 1 :]] == ["create_key"]
    assert len({e["distinct_id"] for e in events[before:]}) == 1  # all of them user_pa's
