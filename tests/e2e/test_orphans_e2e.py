"""kill -9 of the edge while creates are upstream: the tasks it never answered are found after the
restart (the hold sweep lists the upstream's tasks), charged once each to the org whose holds
they fit, and no hold stays held; a task made with the upstream key by someone else is billed to
no one and reported once, in GET /v1/system and the audit log."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import TEXT_CREATE, Gateway, Simulator, cost

TASKS = "/api/v3/contents/generations/tasks"
ANSWERED = 5
UNANSWERED = 15
CREDITS = 1000 * 1_000_000


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"not seen within {timeout} s: {what}"
        time.sleep(0.1)


@pytest.fixture
def slow_simulator() -> Iterator[Simulator]:
    sim = Simulator("--queued-seconds", "0.2", "--running-seconds", "0.5")
    yield sim
    sim.stop()


def creates_seen(sim: Simulator) -> int:
    return sum(r["method"] == "POST" and r["path"] == TASKS for r in sim.requests())


def upstream_tasks(sim: Simulator) -> list[dict[str, Any]]:
    answer = sim.client.get(
        TASKS,
        params={"page_size": 500},
        headers={"Authorization": f"Bearer {sim.api_key}"},
    )
    answer.raise_for_status()
    return answer.json()["items"]


def test_tasks_of_creates_the_dead_edge_never_answered_are_billed_once(
    slow_simulator: Simulator, tmp_path: Path
) -> None:
    sim = slow_simulator
    gw = Gateway(
        tmp_path / "data",
        sim.url,
        sim.api_key,
        env={
            "NEXTAPI_HOLD_SECONDS": "2",
            "NEXTAPI_UPSTREAM_TIMEOUT": "4",
            "NEXTAPI_HOLD_MAX_SECONDS": "60",
            "NEXTAPI_HOLD_SWEEP_INTERVAL": "0.5",
            "NEXTAPI_RECONCILE_INTERVAL": "0.5",
        },
    )
    try:
        org = gw.create_org(credits=CREDITS)
        key = gw.create_key(org["id"])["key"]
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=gw.edge_url, headers=headers, timeout=10) as client:
            answered = [client.post(TASKS, json=TEXT_CREATE) for _ in range(ANSWERED)]
        assert [a.status_code for a in answered] == [200] * ANSWERED

        # The upstream now takes 1.5 s to answer: the edge dies with 15 creates relayed.
        sim.configure(latency_ms=1500)
        sim.clear_requests()
        outcomes: list[str] = []
        lock = threading.Lock()

        def create() -> None:
            try:
                with httpx.Client(base_url=gw.edge_url, headers=headers, timeout=10) as c:
                    outcome = str(c.post(TASKS, json=TEXT_CREATE).status_code)
            except httpx.HTTPError:
                outcome = "disconnected"
            with lock:
                outcomes.append(outcome)

        threads = [threading.Thread(target=create) for _ in range(UNANSWERED)]
        for thread in threads:
            thread.start()
        wait_until(lambda: creates_seen(sim) == UNANSWERED, "every create relayed upstream")
        gw.process.kill9()
        for thread in threads:
            thread.join(15)
        assert outcomes == ["disconnected"] * UNANSWERED
        sim.configure(latency_ms=0)

        # Someone else's task on the same upstream account, like no create of any hold.
        stranger = sim.client.post(
            TASKS,
            json={"model": "seedance-1-0-pro-fast-251015", "content": TEXT_CREATE["content"]},
            headers={"Authorization": f"Bearer {sim.api_key}"},
        )
        assert stranger.status_code == 200, stranger.text
        stranger_id = stranger.json()["id"]
        wait_until(
            lambda: len(upstream_tasks(sim)) == ANSWERED + UNANSWERED + 1,
            "the upstream made every task, the unanswered ones too",
        )

        gw.start()  # same data directory
        org_id = org["id"]

        def settled() -> bool:
            balance = gw.admin.get(f"/v1/orgs/{org_id}/balance").raise_for_status().json()
            charges = [e for e in ledger(gw, org_id) if e["kind"] == "charge"]
            return balance["reserved"] == 0 and len(charges) == ANSWERED + UNANSWERED

        wait_until(settled, "every task charged and no hold held")
        made = {t["id"]: t for t in upstream_tasks(sim) if t["id"] != stranger_id}
        assert len(made) == ANSWERED + UNANSWERED
        charges = [e for e in ledger(gw, org_id) if e["kind"] == "charge"]
        assert sorted(e["task_id"] for e in charges) == sorted(made)  # each once
        expected = {
            task_id: cost(task["model"], task["usage"]["completion_tokens"], resolution="480p")
            for task_id, task in made.items()
        }
        assert {e["task_id"]: -e["amount"] for e in charges} == expected
        balance = gw.admin.get(f"/v1/orgs/{org_id}/balance").raise_for_status().json()
        assert balance == {**balance, "available": CREDITS - sum(expected.values()), "reserved": 0}

        audit = gw.admin.get("/v1/audit", params={"action": "hold.orphan_charged"}).json()
        assert len(audit["items"]) == UNANSWERED
        assert {item["target"] for item in audit["items"]} == {org_id}

        def reported() -> dict[str, Any]:
            orphans = gw.admin.get("/v1/system").raise_for_status().json()["orphans"]
            return orphans if orphans["unbilled"] else {}

        orphans = wait_until(reported, "the stranger's task reported")
        assert orphans["charged"] == UNANSWERED
        assert orphans["unbilled"] == 1
        assert [t["task_id"] for t in orphans["newest_unbilled"]] == [stranger_id]
        assert orphans["newest_unbilled"][0]["reason"] == "unmatched"
        assert orphans["error"] is None
        # Later scans do not report it again.
        checked = orphans["checked_at"]
        wait_until(
            lambda: gw.admin.get("/v1/system").json()["orphans"]["checked_at"] > checked,
            "another scan",
        )
        unbilled = gw.admin.get("/v1/audit", params={"action": "upstream.task_unbilled"}).json()
        assert [item["target"] for item in unbilled["items"]] == [stranger_id]
    finally:
        gw.stop()


def ledger(gw: Gateway, org_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"cursor": cursor} if cursor else {}
        page = gw.admin.get(f"/v1/orgs/{org_id}/ledger", params=params).raise_for_status().json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items
