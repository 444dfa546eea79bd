"""A burst of new connections waits in the edge's accept queue instead of being dropped: while
the edge accepts nothing (its process stopped, as a busy event loop would be), the kernel
completes 300 handshakes for it, and once it runs again it serves a connection of that burst.
Through `run_proxy.py` and under `mitmdump -s addons/gateway.py`.

With asyncio's default listen backlog (100, what mitmproxy asks for) the kernel dropped every
SYN past it: a customer's new connection during a flood of connects waited out the 1 s SYN
retransmit, and connections the client saw as open were never the edge's."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.harness import ROOT, Gateway, Process, Simulator, address, control_process
from tests.e2e.test_connections_e2e import DEADLINE, TASKS, read_until_closed

BURST = 300  # past asyncio's 100, under the edge's 1024
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


def accept_queue(port: int) -> int:
    """Connections the kernel holds for the listening socket on `port`, not yet accepted."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, queues = fields[1], fields[3], fields[4]
        if state == LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
            return int(queues.split(":")[1], 16)  # rx_queue: the accept queue's length
    raise AssertionError(f"nothing listens on {port}")


def burst_while_stopped(pid: int, port: int) -> list[socket.socket]:
    """BURST connections opened while the edge's process is stopped, once the kernel holds
    them all for it (or at DEADLINE)."""
    burst: list[socket.socket] = []
    os.kill(pid, signal.SIGSTOP)
    try:
        for n in range(BURST):
            sock = socket.socket()
            sock.bind((f"127.0.0.{2 + n % 2}", 0))  # under the cap of 256 per address
            sock.setblocking(False)
            try:
                sock.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            burst.append(sock)
        deadline = time.monotonic() + DEADLINE
        while accept_queue(port) < BURST and time.monotonic() < deadline:
            time.sleep(0.05)
        assert accept_queue(port) >= BURST
    finally:
        os.kill(pid, signal.SIGCONT)
    return burst


def served(sock: socket.socket, key: str) -> bytes:
    sock.setblocking(True)
    sock.settimeout(DEADLINE)
    sock.sendall(
        f"GET {TASKS} HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer {key}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    return read_until_closed(sock)


def test_a_burst_of_connections_waits_for_the_edge_instead_of_being_dropped(
    fresh_gateway: Gateway,
) -> None:
    key = fresh_gateway.create_key(fresh_gateway.create_org()["id"])["key"]
    port = int(fresh_gateway.edge_url.rsplit(":", 1)[1])
    fresh_gateway.process.wait_for(r"listen backlog: 1024$")
    burst = burst_while_stopped(fresh_gateway.process.proc.pid, port)
    try:
        assert served(burst.pop(), key).startswith(b"HTTP/1.1 200 ")  # the last one
    finally:
        for sock in burst:
            sock.close()


def test_under_mitmdump_too(simulator: Simulator, tmp_path: Path) -> None:
    token = "nat_test_" + secrets.token_urlsafe(16)
    control = control_process(tmp_path / "control", token)
    mitmdump = None
    try:
        control_url = address(control, "control")
        mitmdump = Process(
            [
                str(Path(sys.executable).parent / "mitmdump"),
                *("-s", "addons/gateway.py", "--mode", f"reverse:{simulator.url}"),
                *("--listen-host", "127.0.0.1", "--listen-port", "0"),
                *("--set", "connection_strategy=lazy"),
                *("--set", f"nextapi_control_url={control_url}"),
                *("--set", f"nextapi_data_dir={tmp_path / 'edge'}"),
            ],
            # mitmproxy loads the script as a package module: its imports come from sys.path,
            # which must name this checkout (the environment's install may be another's).
            env={
                "NEXTAPI_ADMIN_TOKEN": token,
                "NEXTAPI_UPSTREAM_KEY": simulator.api_key,
                "PYTHONPATH": str(ROOT),
            },
        )
        port = int(mitmdump.wait_for(r"listening at (\S+):(\d+)").group(2))
        mitmdump.wait_for(r"listen backlog: 1024$")
        admin = httpx.Client(base_url=control_url, headers={"Authorization": f"Bearer {token}"})
        org = admin.post("/v1/orgs", json={"name": "o", "email": "o@example.com"}).json()
        key = admin.post(f"/v1/orgs/{org['id']}/keys", json={"name": "k"}).json()["key"]
        admin.close()
        edge = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=DEADLINE)
        deadline = time.monotonic() + DEADLINE
        # The edge apart learns of the new key from its policy poll.
        while edge.get(TASKS, headers={"Authorization": f"Bearer {key}"}).status_code != 200:
            assert time.monotonic() < deadline, "the new key never worked"
            time.sleep(0.1)
        edge.close()
        burst = burst_while_stopped(mitmdump.proc.pid, port)
        try:
            assert served(burst.pop(), key).startswith(b"HTTP/1.1 200 ")
        finally:
            for sock in burst:
                sock.close()
    finally:
        if mitmdump is not None:
            mitmdump.stop()
        control.stop()
