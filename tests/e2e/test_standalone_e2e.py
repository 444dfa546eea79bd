"""The edge apart from its control plane: `--role edge`, and mitmproxy's own `mitmdump -s`."""

from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import TEXT_CREATE, Process, Simulator, address, control_process

TASKS = "/api/v3/contents/generations/tasks"


@pytest.fixture
def control(tmp_path: Path):
    token = "nat_test_" + secrets.token_urlsafe(16)
    process = control_process(tmp_path / "control", token)
    url = address(process, "control")
    admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    yield url, token, admin
    admin.close()
    process.stop()


def edge_commands(kind: str, control_url: str, upstream: str, data_dir: Path) -> list[str]:
    if kind == "role-edge":
        return [
            sys.executable,
            "run_proxy.py",
            "--role",
            "edge",
            "--control-url",
            control_url,
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            upstream,
            "--data-dir",
            str(data_dir),
        ]
    mitmdump = str(Path(sys.executable).parent / "mitmdump")
    return [
        mitmdump,
        "-s",
        "addons/gateway.py",
        "--mode",
        f"reverse:{upstream}",
        "--listen-host",
        "127.0.0.1",
        "--listen-port",
        "0",
        "--set",
        "connection_strategy=lazy",
        "--set",
        f"nextapi_control_url={control_url}",
        "--set",
        f"nextapi_data_dir={data_dir}",
    ]


@pytest.mark.parametrize("kind", ["role-edge", "mitmdump"])
def test_edge_apart_pulls_policy_and_ships_usage(
    kind: str, control, simulator: Simulator, tmp_path: Path
) -> None:
    control_url, token, admin = control
    edge = Process(
        edge_commands(kind, control_url, simulator.url, tmp_path / "edge"),
        env={"NEXTAPI_ADMIN_TOKEN": token, "NEXTAPI_UPSTREAM_KEY": simulator.api_key},
    )
    try:
        if kind == "role-edge":
            edge_url = address(edge, "edge")
        else:
            match = edge.wait_for(r"listening at (\S+):(\d+)")
            edge_url = f"http://127.0.0.1:{match.group(2)}"
        org = admin.post("/v1/orgs", json={"name": "apart", "email": "a@example.com"}).json()
        admin.post(f"/v1/orgs/{org['id']}/credits", json={"amount": 10**12})
        created = admin.post(f"/v1/orgs/{org['id']}/keys", json={"name": "k"}).json()
        headers = {"Authorization": f"Bearer {created['key']}"}
        with httpx.Client(base_url=edge_url, headers=headers, timeout=10) as client:
            # The new key reaches the edge through the snapshot long poll within a second.
            deadline = time.monotonic() + 1.0
            while (response := client.post(TASKS, json=TEXT_CREATE)).status_code in (401, 503):
                assert time.monotonic() < deadline, "new key not at the edge within 1 s"
                time.sleep(0.02)
            assert response.status_code == 200, response.text
            request_id = response.headers["x-request-id"]

            # Usage comes back to the control plane.
            deadline = time.monotonic() + 5
            while True:
                log = admin.get(f"/v1/orgs/{org['id']}/requests").json()["items"]
                if any(r["id"] == request_id for r in log):
                    break
                assert time.monotonic() < deadline, "usage never reached the control plane"
                time.sleep(0.05)

            # A revocation reaches the edge within a second too.
            admin.delete(f"/v1/keys/{created['id']}")
            deadline = time.monotonic() + 1.0
            while client.get(TASKS).status_code != 401:
                assert time.monotonic() < deadline, "revoked key still accepted after 1 s"
                time.sleep(0.02)
    finally:
        edge.stop()
    assert created["key"] not in edge.output()
