"""Request heads past their size limits at the socket, against a real edge: answered 431 in the
envelope and closed, a head that never ends refused without the edge buffering it, a head
under the limits served as usual."""

from __future__ import annotations

import json
import select
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Gateway, Simulator
from tests.e2e.test_connections_e2e import (
    DEADLINE,
    TASKS,
    connect,
    read_response,
    read_until_closed,
)

MiB = 2**20


@pytest.fixture(scope="module")
def edge(simulator: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    # The shipped limits: 8 KiB request line, 32 KiB head, 100 header fields.
    gw = Gateway(tmp_path_factory.mktemp("edge"), simulator.url, simulator.api_key)
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def key(edge: Gateway) -> str:
    return edge.create_key(edge.create_org()["id"])["key"]


def rss(pid: int) -> int:
    """The process's resident set, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def get(key: str, size: int) -> bytes:
    """A GET of the task list whose head is exactly `size` bytes (padded by one header)."""
    start = f"GET {TASKS} HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer {key}\r\nX-Pad: "
    return start.encode() + b"a" * (size - len(start) - 4) + b"\r\n\r\n"


def assert_431(response: bytes) -> None:
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 "), response[:200]
    assert b"X-Request-Id: req_" in head
    assert json.loads(body)["error"]["code"] == "RequestHeaderFieldsTooLarge"


def test_an_endless_head_is_refused_without_being_buffered(edge: Gateway) -> None:
    pid = edge.process.proc.pid
    before = rss(pid)
    sock = connect(edge.edge_url)
    sock.sendall(f"GET {TASKS} HTTP/1.1\r\nHost: edge\r\nX-Pad: ".encode())
    chunk, sent, answer, closed = b"a" * 65536, 0, b"", False
    deadline = time.monotonic() + DEADLINE
    # No line end, ever: send while the edge reads, and after its answer too, until it closes
    # the connection (a client that keeps sending must not keep the socket open).
    while sent < 64 * MiB and not closed and time.monotonic() < deadline:
        readable, writable, _ = select.select([sock], [sock], [], 1)
        try:
            if readable:
                data = sock.recv(65536)
                answer += data
                closed = not data
            elif writable:
                sent += sock.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
    sock.close()
    growth = rss(pid) - before
    print(f"sent {sent / MiB:.2f} MiB of head before the close; RSS grew {growth / MiB:.2f} MiB")
    assert sent < 64 * MiB, "the edge read 64 MiB of head without closing the connection"
    assert closed, f"the connection was still open after {DEADLINE} s"
    assert_431(answer)
    assert growth <= 16 * MiB


def test_a_9_kib_request_line_is_refused(edge: Gateway, key: str) -> None:
    sock = connect(edge.edge_url)
    target = TASKS + "?pad=" + "a" * (9 * 1024)
    sock.sendall(
        f"GET {target} HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
    )
    assert_431(read_until_closed(sock))


def test_a_33_kib_head_is_refused(edge: Gateway, key: str) -> None:
    sock = connect(edge.edge_url)
    sock.sendall(get(key, 33 * 1024))
    assert_431(read_until_closed(sock))


def test_a_30_kib_head_is_served(edge: Gateway, key: str) -> None:
    sock = connect(edge.edge_url)
    sock.sendall(get(key, 30 * 1024))
    status, _, body = read_response(sock)
    assert status == 200, body
    sock.sendall(get(key, 100))  # the connection is kept
    assert read_response(sock)[0] == 200
