"""`Idempotency-Key` on creates: one upstream create and one reservation per key and body, held
across a kill -9 of the edge and across edges apart; another body with the key is a 422."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import byteplussdkarkruntime
import httpx
import pytest

from tests.e2e.harness import Cluster, Gateway, Simulator

TASKS = "/api/v3/contents/generations/tasks"
BODY = {"model": "dreamina-seedance-2-0-fast-260128", "content": [{"type": "text", "text": "a"}]}


def creates(simulator: Simulator) -> int:
    return sum(1 for r in simulator.requests() if r["method"] == "POST" and r["path"] == TASKS)


def reservations(admin: httpx.Client, org_id: str) -> list[dict[str, Any]]:
    return admin.get(f"/v1/orgs/{org_id}/ledger").json()["reservations"]


def test_a_retried_create_is_answered_once_even_after_the_edge_is_killed(
    fresh_gateway: Gateway, simulator: Simulator
) -> None:
    gateway = fresh_gateway
    org = gateway.create_org()
    key = gateway.create_key(org["id"])["key"]
    client = byteplussdkarkruntime.Ark(base_url=gateway.base_url, api_key=key, max_retries=0)
    idem = {"Idempotency-Key": f"order-{secrets.token_hex(6)}"}
    simulator.clear_requests()

    first = client.content_generation.tasks.create(**BODY, extra_headers=idem)
    again = client.content_generation.tasks.create(**BODY, extra_headers=idem)
    assert again.id == first.id
    assert creates(simulator) == 1
    assert len(reservations(gateway.admin, org["id"])) == 1

    with pytest.raises(Exception) as reused:
        client.content_generation.tasks.create(
            model=BODY["model"], content=[{"type": "text", "text": "b"}], extra_headers=idem
        )
    assert getattr(reused.value, "status_code", None) == 422

    gateway.process.kill9()
    gateway.start()
    client = byteplussdkarkruntime.Ark(base_url=gateway.base_url, api_key=key, max_retries=0)
    with httpx.Client(base_url=gateway.edge_url, timeout=15) as c:
        raw = c.post(TASKS, json=BODY, headers={"Authorization": f"Bearer {key}", **idem})
    assert raw.status_code == 200 and raw.json()["id"] == first.id
    assert raw.headers["Idempotent-Replayed"] == "true"
    after_restart = client.content_generation.tasks.create(**BODY, extra_headers=idem)
    assert after_restart.id == first.id
    assert creates(simulator) == 1
    assert len(reservations(gateway.admin, org["id"])) == 1

    other = client.content_generation.tasks.create(**BODY, extra_headers={"Idempotency-Key": "x2"})
    assert other.id != first.id and creates(simulator) == 2


def test_a_key_is_scoped_to_its_org_and_refused_when_malformed(
    gateway: Gateway, simulator: Simulator
) -> None:
    keys = [gateway.create_key(gateway.create_org()["id"])["key"] for _ in range(2)]
    idem = {"Idempotency-Key": f"shared-{secrets.token_hex(6)}"}
    with httpx.Client(base_url=gateway.edge_url, timeout=15) as c:
        ids = {
            c.post(TASKS, json=BODY, headers={"Authorization": f"Bearer {k}", **idem}).json()["id"]
            for k in keys
        }
        assert len(ids) == 2  # two orgs, two tasks
        bad = c.post(
            TASKS,
            json=BODY,
            headers={"Authorization": f"Bearer {keys[0]}", "Idempotency-Key": "has space"},
        )
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "Idempotency-Key"


def test_a_key_holds_across_edges_apart(tmp_path: Path, simulator: Simulator) -> None:
    cluster = Cluster(tmp_path, simulator)
    try:
        edges = [cluster.edge(), cluster.edge()]
        key = cluster.customer()
        idem = {"Idempotency-Key": "across-edges", "Authorization": f"Bearer {key}"}
        simulator.clear_requests()
        answers = []
        for edge in [*edges, *edges]:
            with httpx.Client(base_url=edge, timeout=15) as c:
                answers.append(c.post(TASKS, json=BODY, headers=idem))
        assert {a.status_code for a in answers} == {200}
        assert len({a.json()["id"] for a in answers}) == 1
        assert creates(simulator) == 1
        assert len(reservations(cluster.admin, cluster.org_id)) == 1
    finally:
        cluster.stop()
