"""Starting the real processes on loopback for end-to-end tests, and talking to them."""

from __future__ import annotations

import http.server
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from control.jobs.upstream import USER_AGENT as CONTROL_USER_AGENT
from proxy.core.pricing import charge, quote
from proxy.core.seedance.catalog import Catalog
from proxy.seedance.creates import CreateRequest, check_family, parse_create

ROOT = Path(__file__).resolve().parents[2]


class Process:
    """A child process whose output lines are collected, so tests can wait for a line."""

    def __init__(
        self, args: Sequence[str], env: dict[str, str] | None = None, cwd: Path = ROOT
    ) -> None:
        self.args = list(args)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(
            self.args,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if match := regex.search(line):
                        return match
                seen = len(self.lines)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    output = "\n".join(self.lines[-40:])
                    raise AssertionError(f"no line matching {pattern!r}; output:\n{output}")
                self._changed.wait(min(remaining, 0.5))

    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)


def address(process: Process, what: str) -> str:
    match = process.wait_for(rf"^{what} listening on (\S+):(\d+)$")
    return f"http://{match.group(1)}:{match.group(2)}"


def control_process(
    data_dir: Path, token: str, listen: str = "127.0.0.1:0", env: dict[str, str] | None = None
) -> Process:
    """`run_proxy.py --role control` on `listen` with its own data directory; `token` is its
    admin token (and the one its edges present)."""
    return Process(
        [
            sys.executable,
            "run_proxy.py",
            "--role",
            "control",
            "--control-listen",
            listen,
            "--data-dir",
            str(data_dir),
        ],
        env={"NEXTAPI_ADMIN_TOKEN": token, **(env or {})},
    )


class Simulator:
    def __init__(self, *flags: str) -> None:
        self.api_key = "sim_" + secrets.token_hex(8)
        self.process = Process(
            [
                sys.executable,
                "-m",
                "simulator",
                "--listen",
                "127.0.0.1:0",
                "--api-key-env",
                "SIM_API_KEY",
                *flags,
            ],
            env={"SIM_API_KEY": self.api_key},
        )
        self.url = address(self.process, "simulator")
        # A connection per call: the session's simulator sits idle past uvicorn's keep-alive
        # (5 s) between tests, and a call sent as it closed the idle connection failed a
        # teardown ("Server disconnected without sending a response").
        no_reuse = httpx.Limits(max_keepalive_connections=0)
        self.client = httpx.Client(base_url=self.url, timeout=10, limits=no_reuse)

    def configure(self, **knobs: Any) -> None:
        self.client.patch("/_sim/config", json=knobs).raise_for_status()

    def requests(self, *, control_planes: bool = False) -> list[dict[str, Any]]:
        """What reached the simulator; without the control planes' own calls (their hold
        sweeps list the upstream's tasks every so often) unless asked."""
        seen = self.client.get("/_sim/requests").raise_for_status().json()
        if control_planes:
            return seen
        return [r for r in seen if r["headers"].get("user-agent") != CONTROL_USER_AGENT]

    def clear_requests(self) -> None:
        self.client.delete("/_sim/requests").raise_for_status()

    def stop(self) -> None:
        self.client.close()
        self.process.stop()


class Gateway:
    """`run_proxy.py` on free loopback ports with its own data directory."""

    entry: tuple[str, ...] = ("run_proxy.py",)  # what the interpreter runs

    def __init__(
        self,
        data_dir: Path,
        upstream: str,
        upstream_key: str,
        *flags: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.env = env or {}
        self.data_dir = data_dir
        self.admin_token = "nat_test_" + secrets.token_urlsafe(16)
        self.upstream_key = upstream_key
        self.flags = list(flags)
        self.upstream = upstream
        self.start()

    def start(self) -> None:
        self.process = Process(
            [
                sys.executable,
                *self.entry,
                "--listen",
                "127.0.0.1:0",
                "--control-listen",
                "127.0.0.1:0",
                "--data-dir",
                str(self.data_dir),
                "--upstream",
                self.upstream,
                *self.flags,
            ],
            env={
                "NEXTAPI_UPSTREAM_KEY": self.upstream_key,
                "NEXTAPI_ADMIN_TOKEN": self.admin_token,
                # Tests that load the edge must not meet the shipped defaults; the limit tests
                # set their own on orgs and keys.
                "NEXTAPI_DEFAULT_RATE_LIMIT": UNLIMITED,
                "NEXTAPI_UPSTREAM_CONCURRENT_TASKS": "1000000",
                # Every test client is 127.0.0.1: the refusal tests must not throttle each other.
                "NEXTAPI_AUTH_FAILURES_PER_IP_PER_MINUTE": "100000",
                # Test receivers listen on loopback, which real deliveries refuse.
                "NEXTAPI_WEBHOOK_ALLOW_PRIVATE": "1",
                **self.env,
            },
        )
        self.control_url = address(self.process, "control")
        self.edge_url = address(self.process, "edge")
        self.base_url = f"{self.edge_url}/api/v3"
        self.admin = httpx.Client(
            base_url=self.control_url,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=10,
        )

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.admin.close()
        return self.process.stop(sig)

    def restart(self) -> None:
        self.stop()
        self.start()

    # --- admin shortcuts -----------------------------------------------------------------------

    def create_org(self, credits: int = 1000 * 1_000_000, **fields: Any) -> dict[str, Any]:
        """A new org; granted `credits` (micro-credits) unless 0."""
        body = {"name": "Test org", "email": "ops@example.com", **fields}
        response = self.admin.post("/v1/orgs", json=body)
        assert response.status_code == 201, response.text
        org = response.json()
        if credits:
            granted = self.admin.post(f"/v1/orgs/{org['id']}/credits", json={"amount": credits})
            assert granted.status_code == 201, granted.text
        return org

    def create_key(self, org_id: str, **fields: Any) -> dict[str, Any]:
        response = self.admin.post(f"/v1/orgs/{org_id}/keys", json={"name": "k", **fields})
        assert response.status_code == 201, response.text
        return response.json()

    def requests_log(self, org_id: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {**params, **({"cursor": cursor} if cursor else {})}
            page = self.admin.get(f"/v1/orgs/{org_id}/requests", params=query)
            page.raise_for_status()
            body = page.json()
            items += body["items"]
            cursor = body["next_cursor"]
            if not cursor:
                return items

    def wait_for_request_ids(self, org_id: str, ids: set[str], timeout: float = 10.0) -> set[str]:
        """The ids of `ids` the org's request log holds, once it holds all of them (or at
        the timeout): a count would be reached early by records of requests no one saw answered."""
        deadline = time.monotonic() + timeout
        while True:
            logged = ids & {item["id"] for item in self.requests_log(org_id)}
            if logged == ids or time.monotonic() > deadline:
                return logged
            time.sleep(0.05)

    def wait_for_records(self, org_id: str, count: int, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            items = self.requests_log(org_id)
            if len(items) >= count or time.monotonic() > deadline:
                return items
            time.sleep(0.05)


UNLIMITED = json.dumps(
    {"requests_per_minute": 10**9, "requests_per_day": 10**9, "concurrent_tasks": 10**9}
)

SHIPPED_CATALOG = Catalog.load()


def estimate(body: dict[str, Any], catalog: Catalog = SHIPPED_CATALOG) -> int:
    """The hold the edge reserves for a create body (priced from the catalog)."""
    request = parse_create(json.dumps(body).encode(), catalog.reads_flags)
    assert isinstance(request, CreateRequest), request
    family = catalog.match(request.model)
    assert family is not None and check_family(request, family, time.time()) is None
    return quote(catalog, family, request).amount


def cost(model: str, tokens: int, tier: str = "default", **combination: Any) -> int:
    """What a succeeded task of `model` is charged for `tokens` (default resolution, audio as
    the family's default, no video input, unless `combination` says otherwise)."""
    family = SHIPPED_CATALOG.match(model)
    assert family is not None
    unit = SHIPPED_CATALOG.unit_price(
        family,
        tier,
        combination.get("audio", family.audio_default),
        combination.get("resolution", family.default_resolution),
        combination.get("video_input", False),
    )
    return charge(unit, tokens)


TEXT_CREATE = {
    "model": "seedance-1-0-pro-250528",
    "content": [{"type": "text", "text": "a lighthouse at dusk --rs 480p --dur 2"}],
}


class Receiver:
    """A customer's endpoint: keeps every delivery, answers the scripted statuses in turn
    (then 200)."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.arrived: list[float] = []  # time.monotonic() of each delivery, in their order
        self.script: list[int] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.deliveries.append((headers, body))
                receiver.arrived.append(time.monotonic())
                status = receiver.script.pop(0) if receiver.script else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, task_id: str) -> list[tuple[dict[str, str], dict]]:
        found = []
        for headers, body in self.deliveries:
            payload = json.loads(body)
            if payload.get("id") == task_id:
                found.append((headers, payload))
        return found

    def wait(self, predicate, what: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"{what}; got {len(self.deliveries)} deliveries"
            time.sleep(0.05)

    def close(self) -> None:
        self.server.shutdown()


class Cluster:
    """One control plane and any number of edges apart from it."""

    def __init__(
        self,
        tmp_path: Path,
        simulator: Simulator,
        prefix: str = "",
        env: dict[str, str] | None = None,
    ) -> None:
        self.tmp_path, self.simulator, self.prefix = tmp_path, simulator, prefix
        self.env = env or {}  # for the control plane and every edge
        self.token = "nat_test_" + secrets.token_urlsafe(16)
        self.control = self._start_control("127.0.0.1:0")
        self.control_url = address(self.control, "control")
        self.admin = httpx.Client(
            base_url=self.control_url, headers={"Authorization": f"Bearer {self.token}"}
        )
        self.edges: list[Process] = []

    def _start_control(self, listen: str) -> Process:
        upstream = {
            "NEXTAPI_UPSTREAM_KEY": self.simulator.api_key,
            "NEXTAPI_UPSTREAM": self.simulator.url,
        }
        return control_process(self.tmp_path / "control", self.token, listen, upstream | self.env)

    def restart_control(self) -> None:
        """The control plane again, on the same port with the same data (stop it first)."""
        listen = self.control_url.removeprefix("http://")
        self.control = self._start_control(listen)
        assert address(self.control, "control") == self.control_url

    def edge(self, redis_url: str = "", failure: str = "local", control_url: str = "") -> str:
        """An edge apart, on this cluster's control plane unless `control_url` says otherwise
        (a list of them, say); its address."""
        n = len(self.edges)
        shared = ["--redis-url", redis_url] if redis_url else []
        process = Process(
            [
                sys.executable,
                "run_proxy.py",
                "--role",
                "edge",
                "--control-url",
                control_url or self.control_url,
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                self.simulator.url,
                "--data-dir",
                str(self.tmp_path / f"edge{n}"),
                *shared,
            ],
            env={
                "NEXTAPI_ADMIN_TOKEN": self.token,
                "NEXTAPI_UPSTREAM_KEY": self.simulator.api_key,
                "NEXTAPI_REDIS_PREFIX": self.prefix,
                "NEXTAPI_REDIS_FAILURE": failure,
                "NEXTAPI_DEFAULT_RATE_LIMIT": UNLIMITED,
                "NEXTAPI_UPSTREAM_CONCURRENT_TASKS": "1000000",
                **self.env,
            },
        )
        self.edges.append(process)
        return address(process, "edge")

    def customer(self, credits: int = 10**12, **key_fields: object) -> str:
        org = self.admin.post("/v1/orgs", json={"name": "shared", "email": "s@example.com"})
        self.org_id = org.json()["id"]
        self.admin.post(f"/v1/orgs/{self.org_id}/credits", json={"amount": credits})
        key = self.admin.post(f"/v1/orgs/{org.json()['id']}/keys", json={"name": "k", **key_fields})
        return key.json()["key"]

    def stop(self) -> None:
        for process in self.edges:
            process.stop()
        self.admin.close()
        self.control.stop()
