"""No create unbilled, none orphaned: the control plane is killed (SIGKILL) while 20 creates are
in flight through an edge apart, then started again. Every create that was answered 200 ends up
owned by its org, visible to it, and charged exactly once; the others were refused with 503 and
hold nothing; the ledger adds up to the grant less the charges."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.e2e.harness import TEXT_CREATE, Cluster, Simulator

TASKS = "/api/v3/contents/generations/tasks"
CREATES = 20
SPACING_SECONDS = 0.005  # "a few ms apart"
UPSTREAM_LATENCY_MS = 2500  # long enough to kill the control plane with creates upstream
IN_FLIGHT_AT_KILL = 8  # creates that reached the upstream before the kill, at least
GRANT = 10**12


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return value


def creates_upstream(simulator: Simulator) -> int:
    return sum(r["method"] == "POST" and r["path"] == TASKS for r in simulator.requests())


def all_pages(admin: httpx.Client, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = admin.get(path, params={"limit": 500, **({"cursor": cursor} if cursor else {})})
        page.raise_for_status()
        body = page.json()
        items += body["items"]
        if not (cursor := body.get("next_cursor")):
            return items


def test_creates_in_flight_when_the_control_plane_dies_are_owned_and_billed_once(
    fresh_cluster: Cluster, simulator: Simulator
) -> None:
    cluster = fresh_cluster
    edge = cluster.edge()
    key = cluster.customer(credits=GRANT)
    org_id = cluster.org_id
    headers = {"Authorization": f"Bearer {key}"}
    wait_until(
        lambda: httpx.get(f"{edge}{TASKS}", headers=headers).status_code == 200,
        "the key never reached the edge",
    )
    simulator.clear_requests()
    simulator.configure(latency_ms=UPSTREAM_LATENCY_MS)

    answers: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()

    def create() -> None:
        response = httpx.post(f"{edge}{TASKS}", json=TEXT_CREATE, headers=headers, timeout=60)
        with lock:
            answers.append((response.status_code, response.json()))

    threads = [threading.Thread(target=create) for _ in range(CREATES)]
    for thread in threads:
        thread.start()
        time.sleep(SPACING_SECONDS)
    wait_until(
        lambda: creates_upstream(simulator) >= IN_FLIGHT_AT_KILL,
        f"{IN_FLIGHT_AT_KILL} creates never reached the upstream",
    )
    cluster.control.stop(signal.SIGKILL)
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    simulator.configure(latency_ms=0)

    statuses = sorted(status for status, _ in answers)
    assert set(statuses) <= {200, 503}, statuses
    accepted = {body["id"] for status, body in answers if status == 200}
    assert len(accepted) >= IN_FLIGHT_AT_KILL, statuses
    refused = [body for status, body in answers if status == 503]
    assert all(body["error"]["code"] == "ServiceUnavailable" for body in refused)

    cluster.restart_control()

    # Owned: the org's tasks on the control plane are exactly the accepted creates.
    def owned() -> set[str]:
        return {task["id"] for task in all_pages(cluster.admin, f"/v1/orgs/{org_id}/tasks")}

    wait_until(lambda: owned() == accepted, "the accepted creates never all became the org's")
    # Visible to the org through the edge, by list and by get; seeing them end settles them.
    listed = httpx.get(f"{edge}{TASKS}", headers=headers, params={"page_size": 100})
    assert listed.status_code == 200, listed.text
    assert {item["id"] for item in listed.json()["items"]} == accepted
    for task_id in accepted:
        wait_until(
            lambda t=task_id: (
                httpx.get(f"{edge}{TASKS}/{t}", headers=headers).json()["status"] == "succeeded"
            ),
            f"task {task_id} never succeeded",
        )

    # Billed once each, nothing held, and the ledger adds up.
    def charged() -> list[dict[str, Any]] | None:
        tasks = all_pages(cluster.admin, f"/v1/orgs/{org_id}/tasks")
        return tasks if all(task["charged"] is not None for task in tasks) else None

    tasks = wait_until(charged, "not every accepted task was charged")
    ledger = all_pages(cluster.admin, f"/v1/orgs/{org_id}/ledger")
    charges = [entry for entry in ledger if entry["kind"] == "charge"]
    assert sorted(entry["task_id"] for entry in charges) == sorted(accepted)
    assert {task["id"]: task["charged"] for task in tasks} == {
        entry["task_id"]: -entry["amount"] for entry in charges
    }
    assert all(task["charged"] > 0 for task in tasks)

    def settled_balance() -> dict[str, int] | None:
        balance = cluster.admin.get(f"/v1/orgs/{org_id}/balance").json()
        return balance if balance["reserved"] == 0 else None

    balance = wait_until(settled_balance, "credits are still held")
    assert balance["available"] == GRANT + sum(entry["amount"] for entry in charges)
