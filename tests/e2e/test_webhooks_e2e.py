"""Signed webhooks end to end: a real receiver on loopback checks every delivery with the
`standardwebhooks` package (a verifier nobody here wrote)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.e2e.harness import TEXT_CREATE, Gateway, Receiver, Simulator

TASKS = "/api/v3/contents/generations/tasks"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def gw(simulator: Simulator, tmp_path: Path):
    g = Gateway(
        tmp_path / "gw", simulator.url, simulator.api_key, env={"NEXTAPI_PUBLIC_URL": "auto"}
    )
    yield g
    g.stop()


def customer(gw: Gateway) -> tuple[dict, httpx.Client]:
    org = gw.create_org()
    key = gw.create_key(org["id"])["key"]
    return org, httpx.Client(
        base_url=gw.edge_url, headers={"Authorization": f"Bearer {key}"}, timeout=15
    )


def register(gw: Gateway, org_id: str, url: str, events: list[str] | None = None) -> dict:
    body: dict = {"url": url} | ({"events": events} if events is not None else {})
    response = gw.admin.post(f"/v1/orgs/{org_id}/webhooks", json=body)
    assert response.status_code == 201, response.text
    hook = response.json()
    assert hook["secret"].startswith("whsec_")
    return hook


def test_callback_url_events_are_signed_and_verifiable(gw: Gateway, receiver: Receiver) -> None:
    org, client = customer(gw)
    hook = register(gw, org["id"], receiver.url)
    with client:
        task_id = client.post(TASKS, json={**TEXT_CREATE, "callback_url": receiver.url}).json()[
            "id"
        ]
    receiver.wait(
        lambda: any(p["status"] == "succeeded" for _, p in receiver.events(task_id)),
        "no task.succeeded delivery",
    )
    verifier = Webhook(hook["secret"])
    statuses = []
    for headers, body in receiver.deliveries:
        payload = verifier.verify(body, headers)  # raises on a bad signature
        statuses.append(payload["status"])
        assert headers["content-type"] == "application/json"
        assert headers["webhook-id"].startswith("msg_")
    assert statuses[-1] == "succeeded" and "queued" in statuses
    assert len(statuses) == len(set(statuses))  # one event per status, however many saw it
    headers, body = receiver.deliveries[-1]
    with pytest.raises(WebhookVerificationError):
        verifier.verify(body.replace(b"succeeded", b"failed"), headers)
    final = json.loads(body)
    assert final["usage"]["completion_tokens"] > 0  # the task object, shaped like a GET


def test_unregistered_callback_url_is_refused_before_relay(
    gw: Gateway, simulator: Simulator, receiver: Receiver
) -> None:
    org, client = customer(gw)
    register(gw, org["id"], receiver.url)
    with client:
        for url in (receiver.url + "/other", "http://169.254.169.254/latest", "file:///etc"):
            refused = client.post(
                TASKS, params={"probe": "bad-callback"}, json={**TEXT_CREATE, "callback_url": url}
            )
            assert refused.status_code == 400
            assert refused.json()["error"]["param"] == "callback_url"
    assert not [r for r in simulator.requests() if "bad-callback" in str(r["query"])]


def test_subscribed_endpoint_hears_of_failures_without_callback_url(
    gw: Gateway, simulator: Simulator, receiver: Receiver
) -> None:
    org, client = customer(gw)
    register(gw, org["id"], receiver.url, events=["task.failed", "task.succeeded"])
    simulator.configure(fail_tasks=True)
    try:
        with client:
            task_id = client.post(TASKS, json=TEXT_CREATE).json()["id"]
            # No callback_url: the edge learns the end from a get (or the reconciler).
            receiver.wait(
                lambda: (
                    client.get(f"{TASKS}/{task_id}").json()["status"] == "failed"
                    and receiver.events(task_id)
                ),
                "no task.failed delivery",
            )
    finally:
        simulator.configure(fail_tasks=False)
    ((_, payload),) = receiver.events(task_id)  # subscribed to ended tasks only
    assert payload["status"] == "failed"


def test_retry_after_500_keeps_the_webhook_id_and_410_disables(
    gw: Gateway, receiver: Receiver
) -> None:
    org, client = customer(gw)
    hook = register(gw, org["id"], receiver.url, events=["task.succeeded"])
    receiver.script = [500]
    with client:
        task_id = client.post(TASKS, json={**TEXT_CREATE, "callback_url": receiver.url}).json()[
            "id"
        ]

        # The first delivery (the task's first status) got the 500; its retry comes with the
        # same webhook-id, among the deliveries of the task's later statuses.
        def retried() -> list[str]:
            ids = [headers["webhook-id"] for headers, _ in receiver.events(task_id)]
            return [i for i in ids if ids.count(i) > 1]

        receiver.wait(lambda: retried(), "no retry after the 500")
        again = retried()[0]
        for headers, body in receiver.deliveries:
            if headers["webhook-id"] == again:
                Webhook(hook["secret"]).verify(body, headers)
        log = gw.admin.get(f"/v1/orgs/{org['id']}/webhooks/{hook['id']}/deliveries").json()
        tries = [a["status"] for a in reversed(log["items"]) if a["event_id"] == again]
        assert tries == [500, 200]

        receiver.script = [410]
        other = client.post(TASKS, json={**TEXT_CREATE, "callback_url": receiver.url}).json()["id"]
        receiver.wait(lambda: receiver.events(other), "no delivery to answer 410 to")
    deadline = time.monotonic() + 10
    while gw.admin.get(f"/v1/orgs/{org['id']}/webhooks/{hook['id']}").json()["status"] != (
        "disabled"
    ):
        assert time.monotonic() < deadline, "410 did not disable the endpoint"
        time.sleep(0.05)
    audit = gw.admin.get("/v1/audit").json()["items"]
    assert any(e["action"] == "webhook.disable" and e["target"] == hook["id"] for e in audit)


def test_rotation_sends_both_signatures(gw: Gateway, receiver: Receiver) -> None:
    org, client = customer(gw)
    hook = register(gw, org["id"], receiver.url, events=["task.succeeded"])
    rotated = gw.admin.post(
        f"/v1/orgs/{org['id']}/webhooks/{hook['id']}/rotate", json={"grace_seconds": 3600}
    )
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret != hook["secret"]
    with client:
        task_id = client.post(TASKS, json={**TEXT_CREATE, "callback_url": receiver.url}).json()[
            "id"
        ]
    receiver.wait(lambda: receiver.events(task_id), "no delivery")
    headers, body = receiver.deliveries[-1]
    assert len(headers["webhook-signature"].split()) == 2
    Webhook(hook["secret"]).verify(body, headers)
    Webhook(new_secret).verify(body, headers)


def test_outbox_survives_kill_9_between_callback_and_delivery(
    gw: Gateway, receiver: Receiver
) -> None:
    org, client = customer(gw)
    register(gw, org["id"], receiver.url, events=["task.succeeded"])
    receiver.script = [500]  # the first attempt fails: the event waits in the outbox
    with client:
        task_id = client.post(TASKS, json={**TEXT_CREATE, "callback_url": receiver.url}).json()[
            "id"
        ]
    receiver.wait(lambda: receiver.events(task_id), "no first attempt")
    # The endpoint is also the create's callback_url, so it gets every status of the task:
    # the event to follow is the one whose first attempt failed (retried 5 s later).
    failed_id = receiver.events(task_id)[0][0]["webhook-id"]
    gw.process.kill9()
    gw.start()  # same data directory: the outbox is in SQLite

    def attempts_of_the_failed_event() -> int:
        return sum(headers["webhook-id"] == failed_id for headers, _ in receiver.events(task_id))

    receiver.wait(lambda: attempts_of_the_failed_event() >= 2, "event lost in the crash")
    ids_by_status: dict[str, set[str]] = {}
    for headers, payload in receiver.events(task_id):
        ids_by_status.setdefault(payload["status"], set()).add(headers["webhook-id"])
    assert all(len(ids) == 1 for ids in ids_by_status.values()), ids_by_status


def test_endpoint_management_and_redelivery(gw: Gateway, receiver: Receiver) -> None:
    org, client = customer(gw)
    base = f"/v1/orgs/{org['id']}/webhooks"
    hook = register(gw, org["id"], receiver.url, events=["task.succeeded"])
    assert gw.admin.post(base, json={"url": receiver.url}).status_code == 409  # once per org
    assert gw.admin.post(base, json={"url": "ftp://x"}).status_code == 400
    assert (
        gw.admin.post(base, json={"url": receiver.url + "2", "events": ["nope"]}).status_code == 400
    )
    listed = gw.admin.get(base).json()["items"]
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
    patched = gw.admin.patch(f"{base}/{hook['id']}", json={"events": ["task.*"]})
    assert patched.json()["events"] == ["task.*"]

    task_id = client.post(TASKS, json=TEXT_CREATE).json()["id"]
    receiver.wait(
        lambda: (
            client.get(f"{TASKS}/{task_id}").json()["status"] == "succeeded"
            and any(p["status"] == "succeeded" for _, p in receiver.events(task_id))
        ),
        "no delivery",
    )
    headers, _ = receiver.events(task_id)[-1]
    event_id = headers["webhook-id"]
    again = gw.admin.post(f"{base}/{hook['id']}/deliveries/{event_id}/redeliver")
    assert again.status_code == 202
    receiver.wait(
        lambda: [h["webhook-id"] for h, _ in receiver.events(task_id)].count(event_id) == 2,
        "no redelivery",
    )

    # Disabled: nothing more is sent; deleted: gone from the list, refused as callback_url.
    assert gw.admin.patch(f"{base}/{hook['id']}", json={"status": "disabled"}).status_code == 200
    assert gw.admin.delete(f"{base}/{hook['id']}").status_code == 200
    assert gw.admin.get(base).json()["items"] == []
    refused = client.post(TASKS, json={**TEXT_CREATE, "callback_url": receiver.url})
    client.close()
    assert refused.status_code == 400
