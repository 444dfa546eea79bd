"""Floods of connections against a real edge: one address is held to its cap while others are
served; the process raises its open-files limit at start; and a flood from many addresses
that would exhaust the descriptors leaves the control plane, the connections already open and
the log all working (one line a second, no tracebacks).

The edges here run as `tests.e2e.limited_edge`: `run_proxy.py` started with low open-files
limits, as on a machine that keeps the usual 1,024."""

from __future__ import annotations

import json
import os
import re
import resource
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import Gateway, Simulator
from tests.e2e.test_connections_e2e import DEADLINE, TASKS, read_until_closed


class LimitedGateway(Gateway):
    entry = ("-m", "tests.e2e.limited_edge")


def limited(tmp: Path, simulator: Simulator, nofile: str, **env: str) -> LimitedGateway:
    return LimitedGateway(
        tmp, simulator.url, simulator.api_key, env={"NEXTAPI_TEST_NOFILE": nofile, **env}
    )


def open_files_limit(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open-files line")


def idle(url: str, source: str, count: int) -> list[socket.socket]:
    """`count` connections from `source` that send nothing (connected without waiting)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind((source, 0))
        sock.setblocking(False)
        try:
            sock.connect((host, int(port)))
        except BlockingIOError:
            pass
        socks.append(sock)
    return socks


def connect_from(url: str, source: str) -> socket.socket:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=DEADLINE, source_address=(source, 0))


def get_tasks(sock: socket.socket, key: str) -> bytes:
    sock.sendall(
        f"GET {TASKS} HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer {key}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    return read_until_closed(sock)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not seen within {timeout} s: {what}"
        time.sleep(0.05)


@pytest.fixture(autouse=True, scope="module")
def _room_for_the_flood() -> Iterator[None]:
    # This process holds a thousand sockets of its own.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_edge_raises_its_open_files_limit_to_the_hard_limit(
    simulator: Simulator, tmp_path: Path
) -> None:
    hard = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 4096)
    edge = limited(tmp_path, simulator, f"256:{hard}")
    try:
        assert open_files_limit(edge.process.proc.pid) == (hard, hard)
        edge.process.wait_for(rf"open files limit: {hard}$")
    finally:
        edge.stop()


def test_one_address_is_held_to_its_cap_while_others_are_served(
    simulator: Simulator, tmp_path: Path
) -> None:
    edge = limited(tmp_path, simulator, "1024:1024", NEXTAPI_MAX_CONNECTIONS_PER_ADDRESS="5")
    try:
        key = edge.create_key(edge.create_org()["id"])["key"]
        held = [connect_from(edge.edge_url, "127.0.0.2") for _ in range(5)]
        # The sixth from that address: a sentence, then the close, before it sends anything.
        over = connect_from(edge.edge_url, "127.0.0.2")
        answer = read_until_closed(over)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503 "), answer[:200]
        assert b"Retry-After: 1" in head
        assert json.loads(body)["error"]["code"] == "TooManyConnections"
        # Another address is not touched.
        assert get_tasks(connect_from(edge.edge_url, "127.0.0.3"), key).startswith(b"HTTP/1.1 200 ")
        edge.process.wait_for(r"refused 1 client connections \(1 over 5 from one address\)")
        # A connection closed gives its room back.
        held.pop().close()

        def served_again() -> bool:
            return get_tasks(connect_from(edge.edge_url, "127.0.0.2"), key).startswith(
                b"HTTP/1.1 200 "
            )

        wait_until(served_again, "a new connection from 127.0.0.2 served after one closed")
        for sock in held:
            sock.close()
    finally:
        edge.stop()


def test_a_flood_from_many_addresses_leaves_the_control_plane_and_open_connections_working(
    simulator: Simulator, tmp_path: Path
) -> None:
    # 300 descriptors: the edge keeps 150 for itself and holds at most 150 client connections.
    edge = limited(tmp_path, simulator, "300:300")
    pid = edge.process.proc.pid
    flood: list[socket.socket] = []
    try:
        key = edge.create_key(edge.create_org()["id"])["key"]
        customer = httpx.Client(
            base_url=edge.edge_url, headers={"Authorization": f"Bearer {key}"}, timeout=10
        )
        assert customer.get(TASKS).status_code == 200  # its keep-alive connection stays open
        started = time.monotonic()
        for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"):
            flood += idle(edge.edge_url, source, 250)  # under the per-address cap of 256
        edge.process.wait_for(r"refused \d+ client connections \(\d+ with the edge at its 150\)")
        # Refusing takes a descriptor a moment (accept, answer, close): the limit may be met
        # meanwhile; once the backlog is answered the edge holds its budget and no more.
        wait_until(
            lambda: len(os.listdir(f"/proc/{pid}/fd")) < 300, "the edge below its open-files limit"
        )
        # While the flood holds every connection the edge will take:
        assert httpx.get(f"{edge.control_url}/healthz", timeout=10).status_code == 200
        assert edge.admin.get("/v1/orgs").status_code == 200
        for _ in range(5):
            assert customer.get(TASKS).status_code == 200
        elapsed = time.monotonic() - started
        output = edge.process.output()
        assert "Traceback" not in output
        out_of_fds = len(re.findall(r"out of file descriptors", output))
        assert out_of_fds <= elapsed + 2, f"{out_of_fds} lines in {elapsed:.1f} s"
        for sock in flood:
            sock.close()
        flood.clear()

        def a_new_connection_is_served() -> bool:
            with httpx.Client(base_url=edge.edge_url, timeout=10) as fresh:
                answer = fresh.get(TASKS, headers={"Authorization": f"Bearer {key}"})
            return answer.status_code == 200

        wait_until(a_new_connection_is_served, "a new connection served after the flood")
        customer.close()
    finally:
        for sock in flood:
            sock.close()
        edge.stop()
