"""An edge apart restarted while its control plane is away serves from its policy snapshot file
(proxy/policy_file.py); a corrupt file is refused with one clear line, and the edge answers 503
(never 401) until the control plane is back. Real processes on loopback: a control plane
(`--role control`), an edge (`--role edge` or `mitmdump -s addons/gateway.py`), the simulator."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from proxy.core import keys
from proxy.policy_file import FILE_NAME, HEADER_BYTES, SnapshotFile
from tests.e2e.harness import TEXT_CREATE, Process, Simulator, address
from tests.e2e.test_control_outage_e2e import start_control
from tests.e2e.test_standalone_e2e import edge_commands

TASKS = "/api/v3/contents/generations/tasks"
BILLING_AWAY = "Billing is not available."  # addons/billing.py: a create with the ledger away
UNCHECKED = "The API key cannot be checked right now; try again shortly."
UNTHROTTLED = 100_000  # failed authentications a minute from one address


class Deployment:
    """One control plane (stopped and started again on its port and data) and one edge apart."""

    def __init__(self, kind: str, tmp_path: Path, simulator: Simulator) -> None:
        self.kind, self.tmp_path, self.simulator = kind, tmp_path, simulator
        self.token = "nat_test_" + secrets.token_urlsafe(16)
        self.control_dir, self.edge_dir = tmp_path / "control", tmp_path / "edge"
        self.control: Process | None = None
        self.edge: Process | None = None
        self.start_control()

    def start_control(self) -> None:
        listen = f"127.0.0.1:{self.port}" if self.control is not None else "127.0.0.1:0"
        self.control, self.control_url = start_control(self.control_dir, self.token, listen)
        self.port = int(self.control_url.rsplit(":", 1)[1])
        self.admin = httpx.Client(
            base_url=self.control_url, headers={"Authorization": f"Bearer {self.token}"}
        )

    def stop_control(self) -> None:
        assert self.control is not None
        self.admin.close()
        assert self.control.stop() == 0, self.control.output()[-2000:]

    def start_edge(self) -> str:
        # The tests wait for a key with a create every 50 ms, each 401 a failed authentication
        # until the edge's poller (maybe in its backoff, up to 5 s, after an outage) brings the
        # key: the failed-auth throttle (30 a minute) is not what they are about.
        command = edge_commands(self.kind, self.control_url, self.simulator.url, self.edge_dir)
        if self.kind == "mitmdump":
            command += ["--set", f"nextapi_auth_failures_per_ip={UNTHROTTLED}"]
        self.edge = Process(
            command,
            env={
                "NEXTAPI_ADMIN_TOKEN": self.token,
                "NEXTAPI_UPSTREAM_KEY": self.simulator.api_key,
                "NEXTAPI_AUTH_FAILURES_PER_IP_PER_MINUTE": str(UNTHROTTLED),
            },
        )
        if self.kind == "role-edge":
            return address(self.edge, "edge")
        match = self.edge.wait_for(r"listening at (\S+):(\d+)")
        return f"http://127.0.0.1:{match.group(2)}"

    def customer(self) -> str:
        org = self.admin.post("/v1/orgs", json={"name": "restart", "email": "r@example.com"})
        assert org.status_code == 201, org.text
        granted = self.admin.post(f"/v1/orgs/{org.json()['id']}/credits", json={"amount": 10**12})
        assert granted.status_code == 201, granted.text
        created = self.admin.post(f"/v1/orgs/{org.json()['id']}/keys", json={"name": "k"})
        assert created.status_code == 201, created.text
        return created.json()["key"]

    def saved_keys(self) -> set[str]:
        """The key ids in the edge's snapshot file right now (none while there is no file)."""
        saved = SnapshotFile(
            self.edge_dir / FILE_NAME, self.token, self.control_url, max_age=86400
        ).load()
        return set() if saved is None else set(saved.snapshot.keys)

    def stop(self) -> None:
        self.admin.close()
        for process in (self.edge, self.control):
            if process is not None:
                process.stop()


def create(edge_url: str, key: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(f"{edge_url}{TASKS}", json=TEXT_CREATE, headers=headers, timeout=10)


def until_created(edge_url: str, key: str, what: str, timeout: float = 10) -> None:
    """Creates until one is a 200: only a key unknown yet (401) or unchecked (503) may precede."""
    deadline = time.monotonic() + timeout
    while (response := create(edge_url, key)).status_code in (401, 503):
        assert time.monotonic() < deadline, f"{what}: {response.status_code} {response.text}"
        time.sleep(0.05)
    assert response.status_code == 200, response.text


def wait_until(condition: Any, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


def error(response: httpx.Response) -> dict[str, Any]:
    return response.json()["error"]


def wrong_secret(key: str) -> str:
    """The same key id with another secret (a well-formed key, checksum and all)."""
    parsed = keys.parse_key(key)
    assert parsed is not None
    other, _ = keys.generate_key("live")
    return other.replace(keys.parse_key(other).key_id, parsed.key_id)  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", ["role-edge", "mitmdump"])
def test_an_edge_restarted_during_an_outage_serves_valid_keys_from_its_file(
    kind: str, simulator: Simulator, tmp_path: Path
) -> None:
    deployment = Deployment(kind, tmp_path, simulator)
    try:
        edge_url = deployment.start_edge()
        key = deployment.customer()
        key_id = keys.parse_key(key).key_id  # type: ignore[union-attr]
        until_created(edge_url, key, "the key never worked at the edge")
        wait_until(lambda: key_id in deployment.saved_keys(), "the key in the edge's file")
        path = deployment.edge_dir / FILE_NAME
        assert path.stat().st_mode & 0o777 == 0o600

        # The control plane goes away; the edge is restarted meanwhile.
        deployment.stop_control()
        assert deployment.edge is not None
        deployment.edge.stop()
        edge_url = deployment.start_edge()
        deployment.edge.wait_for(r"serving policy version \d+ from .*policy\.snapshot")

        # The valid key passes authentication: its create is refused by billing, which needs
        # the control plane (503), not as an invalid key (401).
        refused = create(edge_url, key)
        assert refused.status_code == 503, refused.text
        assert error(refused)["message"] == BILLING_AWAY
        # Keys the file says are invalid still are.
        for invalid in (wrong_secret(key), keys.generate_key("live")[0]):
            answer = create(edge_url, invalid)
            assert answer.status_code == 401, answer.text
            assert error(answer)["code"] == "AuthenticationError"

        # The control plane comes back; the edge catches up with what changed meanwhile.
        deployment.start_control()
        until_created(edge_url, key, "the valid key after the control plane came back")
        newer = deployment.customer()
        until_created(edge_url, newer, "a key made after the control plane came back")
        newer_id = keys.parse_key(newer).key_id  # type: ignore[union-attr]
        wait_until(lambda: newer_id in deployment.saved_keys(), "the newer key in the file")
    finally:
        deployment.stop()
    assert deployment.edge is not None and key not in deployment.edge.output()


def test_a_corrupt_file_is_refused_once_and_keys_get_503_until_the_control_plane_is_back(
    simulator: Simulator, tmp_path: Path
) -> None:
    deployment = Deployment("role-edge", tmp_path, simulator)
    try:
        edge_url = deployment.start_edge()
        key = deployment.customer()
        key_id = keys.parse_key(key).key_id  # type: ignore[union-attr]
        until_created(edge_url, key, "the key never worked at the edge")
        wait_until(lambda: key_id in deployment.saved_keys(), "the key in the edge's file")

        deployment.stop_control()
        assert deployment.edge is not None
        deployment.edge.stop()
        path = deployment.edge_dir / FILE_NAME
        data = bytearray(path.read_bytes())
        data[HEADER_BYTES + len(data[HEADER_BYTES:]) // 2] ^= 0xFF  # a byte in the snapshot
        path.write_bytes(bytes(data))

        edge_url = deployment.start_edge()
        refused_line = "is corrupt or was altered (its authenticator does not match): not used"
        deployment.edge.wait_for(re.escape(refused_line))

        # Never had a valid snapshot: a key is neither valid nor invalid here (503, Retry-After);
        # a request without any key is still a 401.
        for candidate in (key, keys.generate_key("live")[0]):
            answer = create(edge_url, candidate)
            assert answer.status_code == 503, answer.text
            assert error(answer) == {
                "code": "ServiceUnavailable",
                "message": UNCHECKED,
                "param": "",
                "type": "ServiceUnavailable",
            }
            assert answer.headers["retry-after"] == "5"
        anonymous = httpx.post(f"{edge_url}{TASKS}", json=TEXT_CREATE, timeout=10)
        assert anonymous.status_code == 401

        deployment.start_control()
        until_created(edge_url, key, "the valid key after the control plane came back")
        wait_until(lambda: key_id in deployment.saved_keys(), "a good file written again")
        said = [line for line in deployment.edge.lines if "policy snapshot file" in line]
        assert len(said) == 1 and refused_line in said[0], said
    finally:
        deployment.stop()
