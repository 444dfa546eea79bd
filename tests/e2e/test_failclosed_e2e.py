"""Fail closed by construction: a fault in any request-path addon of the chain, in turn, ends the
request with the edge's own 5xx (503 with `Retry-After` for a dependency that is away, 500 for a
bug), its request id, a usage record and a log line; nothing reaches the upstream, and a hold
taken before the fault is given back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.faulty_edge import FAULT_HEADER, request_path_hooks
from tests.e2e.harness import TEXT_CREATE, Gateway, Simulator

TASKS = "/api/v3/contents/generations/tasks"
HOOKS = request_path_hooks()
# Until the key is verified the request belongs to no org: its record is kept by key id only,
# and the org's request log cannot show it.
BEFORE_IDENTITY = {"Edge.requestheaders", "Auth.requestheaders"}


class FaultyGateway(Gateway):
    entry = ("-m", "tests.e2e.faulty_edge")


@pytest.fixture(scope="module")
def faulty(simulator: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = FaultyGateway(tmp_path_factory.mktemp("faulty"), simulator.url, simulator.api_key)
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def customer(faulty: Gateway) -> tuple[str, str]:
    org = faulty.create_org(credits=10**12)
    return org["id"], faulty.create_key(org["id"])["key"]


def test_the_chain_has_request_path_hooks_to_break() -> None:
    # The cases below come from the chain itself; a chain read wrong would test nothing.
    assert {
        "Edge.requestheaders",
        "Auth.requestheaders",
        "Billing.request",
        "Tasks.request",
    } <= set(HOOKS)
    assert HOOKS[-1] == "Relay.request"


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("dependency", 503, "ServiceUnavailable"),
        ("bug", 500, "InternalServiceError"),
    ],
)
@pytest.mark.parametrize("hook", HOOKS)
def test_a_fault_in_a_request_path_addon_is_answered_and_never_relayed(
    faulty: Gateway,
    simulator: Simulator,
    customer: tuple[str, str],
    hook: str,
    kind: str,
    status: int,
    code: str,
) -> None:
    org_id, key = customer
    marker = uuid.uuid4().hex
    headers = {
        "Authorization": f"Bearer {key}",
        FAULT_HEADER: f"{hook}:{kind}",
        # Every addon has work to do on this create, the idempotency claim included.
        "Idempotency-Key": marker,
    }
    response = httpx.post(f"{faulty.edge_url}{TASKS}", json=TEXT_CREATE, headers=headers)

    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    request_id = response.headers["x-request-id"]
    assert request_id.startswith("req_")
    if status == 503:
        assert int(response.headers["retry-after"]) > 0
    # Nothing of it reached the upstream (the simulator logs every request it gets).
    relayed = [
        r
        for r in simulator.requests()
        if r["headers"].get("idempotency-key") == marker or r["headers"].get(FAULT_HEADER)
    ]
    assert relayed == []
    # The edge said so in its log, naming the request and the hook.
    faulty.process.wait_for(rf"request {request_id}: {hook} ", timeout=10)
    if hook not in BEFORE_IDENTITY:
        # The usage record, with the answer the customer got.
        assert faulty.wait_for_request_ids(org_id, {request_id}) == {request_id}
        record = next(r for r in faulty.requests_log(org_id) if r["id"] == request_id)
        assert record["status"] == status
    # No credits stay held for a create that was never relayed.
    balance = faulty.admin.get(f"/v1/orgs/{org_id}/balance").json()
    assert balance["reserved"] == 0, balance


def test_after_the_faults_the_same_create_goes_through(
    faulty: Gateway, simulator: Simulator, customer: tuple[str, str], tmp_path: Path
) -> None:
    """The faults are the test's, not the edge's: without the header the create is relayed
    (so the refusals above prove the guard, not a broken edge)."""
    _, key = customer
    response = httpx.post(
        f"{faulty.edge_url}{TASKS}", json=TEXT_CREATE, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.text
    task_id = response.json()["id"]
    assert any(r["method"] == "POST" and r["path"] == TASKS for r in simulator.requests())
    assert task_id
