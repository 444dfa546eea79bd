"""Ownership is never guessed: with the control plane stopped, two orgs on edges apart never see
each other's task ids, by list, get or delete, through any of the three official SDKs. An edge
that knows a task's owner (it relayed the create) answers from that; one that does not answers
503 with `Retry-After`, and the upstream is never asked."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import arkruntime
import byteplussdkarkruntime
import httpx
import volcenginesdkarkruntime

from tests.e2e.harness import TEXT_CREATE, Cluster, Simulator

TASKS = "/api/v3/contents/generations/tasks"
SDKS: dict[str, Callable[..., Any]] = {
    "byteplus": byteplussdkarkruntime.Ark,
    "volcengine": volcenginesdkarkruntime.Ark,
    "arkruntime": arkruntime.Ark,
}


def outcome(call: Callable[[], Any]) -> tuple[int, str]:
    """(status, everything the caller got to see) of one SDK call."""
    try:
        result = call()
    except Exception as exc:
        status = getattr(exc, "status_code", None)
        assert isinstance(status, int), f"{type(exc).__name__}: {exc}"
        response = getattr(exc, "response", None)
        return status, f"{exc} {response.text if response is not None else ''}"
    return 200, repr(result)


def customer(cluster: Cluster, name: str) -> tuple[str, str]:
    org = cluster.admin.post("/v1/orgs", json={"name": name, "email": f"{name}@example.com"})
    assert org.status_code == 201, org.text
    org_id = org.json()["id"]
    granted = cluster.admin.post(f"/v1/orgs/{org_id}/credits", json={"amount": 10**12})
    assert granted.status_code == 201, granted.text
    key = cluster.admin.post(f"/v1/orgs/{org_id}/keys", json={"name": "k"})
    assert key.status_code == 201, key.text
    return org_id, key.json()["key"]


def wait_for_key(edge_url: str, key: str) -> None:
    deadline = time.monotonic() + 15
    headers = {"Authorization": f"Bearer {key}"}
    while httpx.get(f"{edge_url}{TASKS}", headers=headers).status_code in (401, 503):
        assert time.monotonic() < deadline, "the key never reached the edge"
        time.sleep(0.05)


def test_no_org_sees_another_orgs_tasks_while_the_control_plane_is_away(
    fresh_cluster: Cluster, simulator: Simulator
) -> None:
    cluster = fresh_cluster
    knowing = cluster.edge()  # relays both creates, so it knows both owners
    unknowing = cluster.edge()  # never saw either task
    (_, key_a), (_, key_b) = customer(cluster, "alpha"), customer(cluster, "beta")
    for edge_url in (knowing, unknowing):
        for key in (key_a, key_b):
            wait_for_key(edge_url, key)
    task = {}
    for name, key in (("a", key_a), ("b", key_b)):
        created = httpx.post(
            f"{knowing}{TASKS}", json=TEXT_CREATE, headers={"Authorization": f"Bearer {key}"}
        )
        assert created.status_code == 200, created.text
        task[name] = created.json()["id"]
    # Before the outage the unknowing edge shows each org its own list, and only its own.
    listed = httpx.get(f"{unknowing}{TASKS}", headers={"Authorization": f"Bearer {key_a}"})
    assert listed.status_code == 200 and task["a"] in listed.text and task["b"] not in listed.text

    assert cluster.control.stop() == 0
    simulator.clear_requests()

    for sdk_name, ark in SDKS.items():
        for me, key, mine, theirs in (
            ("a", key_a, task["a"], task["b"]),
            ("b", key_b, task["b"], task["a"]),
        ):
            knows = ark(
                base_url=f"{knowing}/api/v3", api_key=key, max_retries=0
            ).content_generation.tasks
            blind = ark(
                base_url=f"{unknowing}/api/v3", api_key=key, max_retries=0
            ).content_generation.tasks
            where = f"{sdk_name}, org {me}"
            seen = {
                "own get (owner known)": outcome(lambda t=knows, i=mine: t.get(task_id=i)),
                "other's get (owner known)": outcome(lambda t=knows, i=theirs: t.get(task_id=i)),
                "other's delete (owner known)": outcome(
                    lambda t=knows, i=theirs: t.delete(task_id=i)
                ),
                "list (owner known)": outcome(lambda t=knows: t.list(page_size=50)),
                "own get": outcome(lambda t=blind, i=mine: t.get(task_id=i)),
                "other's get": outcome(lambda t=blind, i=theirs: t.get(task_id=i)),
                "other's delete": outcome(lambda t=blind, i=theirs: t.delete(task_id=i)),
                "list": outcome(lambda t=blind: t.list(page_size=50)),
                "filtered list": outcome(lambda t=blind, i=theirs: t.list(task_ids=[i])),
            }
            statuses = {what: status for what, (status, _) in seen.items()}
            assert statuses == {
                "own get (owner known)": 200,
                "other's get (owner known)": 404,
                "other's delete (owner known)": 404,
                "list (owner known)": 503,
                "own get": 503,
                "other's get": 503,
                "other's delete": 503,
                "list": 503,
                "filtered list": 503,
            }, where
            for what, (_, text) in seen.items():
                assert theirs not in text, f"{where}: {what} showed the other org's task"

    # Only the owner's own get was relayed; the other org's task was never read or deleted.
    asked = [(r["method"], r["path"]) for r in simulator.requests() if r["path"].startswith(TASKS)]
    assert set(asked) <= {("GET", f"{TASKS}/{task['a']}"), ("GET", f"{TASKS}/{task['b']}")}
    upstream = httpx.get(
        f"{simulator.url}{TASKS}/{task['b']}",
        headers={"Authorization": f"Bearer {simulator.api_key}"},
    )
    assert upstream.status_code == 200  # still there: no delete went through
