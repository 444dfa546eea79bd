"""An edge apart given several control planes (`--control-url DEAD,LIVE`) whose first is dead,
refusing connections or answering 503 to everything: it moves to the live one once and stays
there, gets its policy, and a create through it is reserved, settled and logged, exactly once.

Two real control planes cannot share one SQLite file (one writer), so the second URL is the one
real control plane and the first is a closed port or a tiny loopback server."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import TEXT_CREATE, Cluster, Simulator, cost, estimate

TASKS = "/api/v3/contents/generations/tasks"
CREDITS = 10**12


class Unavailable:
    """A control plane that answers 503 to everything, counting what reaches it."""

    def __init__(self) -> None:
        self.calls = 0
        unavailable = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                unavailable.calls += 1
                self.send_response(503)
                self.send_header("content-length", "0")
                self.end_headers()

            do_GET = do_POST = answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port_url() -> str:
    """A loopback URL nothing listens on (bound, read back, closed): connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def wait_for[T](read: Callable[[], T], done: Callable[[T], bool], what: str, timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while not done(value := read()):
        assert time.monotonic() < deadline, f"{what} within {timeout} s; last: {value!r}"
        time.sleep(0.05)
    return value


@pytest.fixture
def cluster(simulator: Simulator, tmp_path: Path) -> Iterator[Cluster]:
    made = Cluster(tmp_path, simulator)
    yield made
    made.stop()


@pytest.mark.parametrize("first", ["refusing", "503"])
def test_an_edge_moves_past_a_dead_first_control_plane_and_bills_once(
    cluster: Cluster, first: str
) -> None:
    unavailable = Unavailable() if first == "503" else None
    try:
        dead = unavailable.url if unavailable is not None else closed_port_url()
        key = cluster.customer(credits=CREDITS)
        org_id = cluster.org_id
        edge_url = cluster.edge(control_url=f"{dead},{cluster.control_url}")
        edge = cluster.edges[-1]
        with httpx.Client(
            base_url=edge_url, headers={"Authorization": f"Bearer {key}"}, timeout=15
        ) as client:
            # The policy came through the second URL: the key works at the edge.
            listed = wait_for(
                lambda: client.get(TASKS), lambda r: r.status_code == 200, "the key works", 15
            )
            assert listed.status_code == 200
            hits_after_move = unavailable.calls if unavailable is not None else 0
            created = client.post(TASKS, json=TEXT_CREATE)
            assert created.status_code == 200, created.text
            task_id, request_id = created.json()["id"], created.headers["x-request-id"]
            task = wait_for(
                lambda: client.get(f"{TASKS}/{task_id}").json(),
                lambda t: t["status"] == "succeeded",
                "the task succeeds",
                20,
            )
        expected = cost(TEXT_CREATE["model"], task["usage"]["completion_tokens"])

        # Reserved (the task holds the create's estimate) and settled, once.
        def tasks() -> list[tuple[str, str, int, int | None]]:
            items = cluster.admin.get(f"/v1/orgs/{org_id}/tasks").json()["items"]
            return [(t["id"], t["status"], t["reserved"], t["charged"]) for t in items]

        settled = [(task_id, "succeeded", estimate(TEXT_CREATE), expected)]
        assert wait_for(tasks, lambda t: t == settled, "the task settled", 15) == settled
        ledger = cluster.admin.get(f"/v1/orgs/{org_id}/ledger").json()["items"]
        assert [e["amount"] for e in ledger if e["kind"] == "charge"] == [-expected]
        balance = cluster.admin.get(f"/v1/orgs/{org_id}/balance").json()
        assert balance == {"available": CREDITS - expected, "reserved": 0}

        # The create's usage record reached the request log, once.
        def logged() -> list[str]:
            items = cluster.admin.get(f"/v1/orgs/{org_id}/requests").json()["items"]
            return [item["id"] for item in items]

        ids = wait_for(logged, lambda ids: request_id in ids, "the create's record", 15)
        assert ids.count(request_id) == 1 and len(ids) == len(set(ids))

        # One move, logged once, naming the URL and not the token; sticky: the first was never
        # asked again once the edge had moved.
        moves = [line for line in edge.lines if f"control plane {dead} failed" in line]
        assert len(moves) == 1, edge.output()[-3000:]
        assert f"moving to {cluster.control_url}" in moves[0]
        assert cluster.token not in edge.output() and key not in edge.output()
        if unavailable is not None:
            assert unavailable.calls == hits_after_move >= 1
        # The control plane lists the edge (its report headers came through the second URL).
        system = cluster.admin.get("/v1/system").json()
        assert [e["reports"] for e in system["edges"]] == [True]
    finally:
        if unavailable is not None:
            unavailable.close()
