"""Client connections at the socket: ambiguous request framing refused with 400 and never relayed,
a trailer section answered, and every way of holding a connection without a complete request
closed by its time limit, while requests that keep moving (and slow upstream answers) are not
cut. Through `run_proxy.py`, over TLS, under `mitmdump -s addons/gateway.py` and `--workers 2`.

The edges here run with one-second limits; a connection must close before DEADLINE."""

from __future__ import annotations

import json
import secrets
import select
import socket
import ssl
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import h2.config
import h2.connection
import h2.errors
import h2.events
import pytest
import redis

from tests.e2e.harness import TEXT_CREATE, Gateway, Process, Simulator, address, control_process
from tests.e2e.test_tls_e2e import self_signed

TASKS = "/api/v3/contents/generations/tasks"
LIMITS = {
    "NEXTAPI_REQUEST_HEADER_TIMEOUT": "1",
    "NEXTAPI_REQUEST_BODY_TIMEOUT": "1",
    "NEXTAPI_KEEPALIVE_TIMEOUT": "1",
}
DEADLINE = 15.0  # generous: every limit here is 1 s
REDIS = "redis://127.0.0.1:6379/0"  # --workers needs it; keys under a prefix of the test's own
CREATE = json.dumps(TEXT_CREATE).encode()


@pytest.fixture(scope="module")
def edge(simulator: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = Gateway(tmp_path_factory.mktemp("edge"), simulator.url, simulator.api_key, env=LIMITS)
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def key(edge: Gateway) -> str:
    return edge.create_key(edge.create_org()["id"])["key"]


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=DEADLINE)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the edge sends until it closes the connection (fails at DEADLINE)."""
    received = b""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"still open after {DEADLINE} s; received {received!r}")


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One answer (with a Content-Length), leaving the connection as it is."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed without an answer; received {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), headers, body


def closed_while_trickling(sock: socket.socket, byte: bytes = b"a") -> bytes:
    """Send one byte every 0.2 s (so the connection is never idle) until the edge closes it;
    what it sent before closing."""
    received = b""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        try:
            sock.sendall(byte)
            if select.select([sock], [], [], 0.2)[0]:
                chunk = sock.recv(65536)
                if not chunk:
                    return received
                received += chunk
        except (BrokenPipeError, ConnectionResetError):
            return received
    raise AssertionError(f"still open after {DEADLINE} s of trickling")


def relayed(simulator: Simulator, marker: str) -> list[dict]:
    return [r for r in simulator.requests() if marker in json.dumps(r)]


def request(method: str, *fields: str, body: bytes = b"", line_end: str = "\r\n") -> bytes:
    head = line_end.join([f"{method} {TASKS} HTTP/1.1", *fields]) + line_end * 2
    return head.encode("latin-1") + body


def assert_refused(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 400, body
    assert headers["x-request-id"].startswith("req_")
    assert headers["content-type"] == "application/json" and "server" not in headers
    assert json.loads(body)["error"]["code"] == "MalformedRequest"


CHUNKED = "Transfer-Encoding: chunked"
LENGTH = f"Content-Length: {len(CREATE)}"
# Each is a create (a valid key, a valid body): it would reach the simulator if accepted.
SHAPES = {
    "content-length and transfer-encoding": ([LENGTH, CHUNKED], b"0\r\n\r\n"),
    "two different content-lengths": ([LENGTH, "Content-Length: 2"], CREATE),
    "two equal content-lengths": ([LENGTH, LENGTH], CREATE),
    "a content-length list": ([f"{LENGTH}, {len(CREATE)}"], CREATE),
    "chunked, identity": (["Transfer-Encoding: chunked, identity"], b"0\r\n\r\n"),
    "xchunked": (["Transfer-Encoding: xchunked"], b"0\r\n\r\n"),
    "gzip, chunked": (["Transfer-Encoding: gzip, chunked"], b"0\r\n\r\n"),
    "transfer-encoding twice": ([CHUNKED, CHUNKED], b"0\r\n\r\n"),
    "transfer-encoding folded": (["Transfer-Encoding:", " chunked"], b"0\r\n\r\n"),
    "space before the colon": (["Transfer-Encoding : chunked"], b"0\r\n\r\n"),
    "a vertical tab in the value": (["Transfer-Encoding:\x0bchunked"], b"0\r\n\r\n"),
    "a chunk size that is not hex": ([CHUNKED], b"zz\r\n" + CREATE + b"\r\n0\r\n\r\n"),
    "a negative chunk size": ([CHUNKED], b"-2\r\n{}\r\n0\r\n\r\n"),
    "a 0x chunk size": ([CHUNKED], b"0x%x\r\n%s\r\n0\r\n\r\n" % (len(CREATE), CREATE)),
    "a chunk longer than its size": ([CHUNKED], b"1\r\n" + CREATE + b"\r\n0\r\n\r\n"),
    "an obs-fold line": (["X-Note: a", " b", LENGTH], CREATE),
    "a bare CR in a value": (["X-Note: a\rb", LENGTH], CREATE),
    "a NUL in a value": (["X-Note: a\x00b", LENGTH], CREATE),
    "a second host": (["Host: other", LENGTH], CREATE),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_an_ambiguous_request_is_refused_closed_and_never_relayed(
    edge: Gateway, key: str, simulator: Simulator, shape: str
) -> None:
    fields, body = SHAPES[shape]
    marker = secrets.token_hex(8)
    auth = [f"Authorization: Bearer {key}", f"X-Probe: {marker}"]
    with connect(edge.edge_url) as sock:
        sock.sendall(request("POST", "Host: edge", *auth, *fields, body=body))
        assert_refused(*read_response(sock))
        assert read_until_closed(sock) == b""
    assert relayed(simulator, marker) == []


@pytest.mark.parametrize("shape", ["bare LF line ends", "no host"])
def test_heads_the_rfc_says_to_refuse(
    edge: Gateway, key: str, simulator: Simulator, shape: str
) -> None:
    marker = secrets.token_hex(8)
    fields = [f"Authorization: Bearer {key}", f"X-Probe: {marker}", LENGTH]
    if shape == "no host":
        raw = request("POST", *fields, body=CREATE)
    else:
        raw = request("POST", "Host: edge", *fields, body=CREATE, line_end="\n")
    with connect(edge.edge_url) as sock:
        sock.sendall(raw)
        assert_refused(*read_response(sock))
        assert read_until_closed(sock) == b""
    assert relayed(simulator, marker) == []


def test_the_same_request_well_framed_is_relayed(
    edge: Gateway, key: str, simulator: Simulator
) -> None:
    """The control for the two above: their requests, framed once, do reach the simulator."""
    marker = secrets.token_hex(8)
    fields = ["Host: edge", f"Authorization: Bearer {key}", f"X-Probe: {marker}", LENGTH]
    with connect(edge.edge_url) as sock:
        sock.sendall(request("POST", *fields, body=CREATE))
        assert read_response(sock)[0] == 200
    assert len(relayed(simulator, marker)) == 1


def test_a_chunked_request_with_trailers_is_answered_and_the_connection_kept(
    edge: Gateway, key: str, simulator: Simulator
) -> None:
    marker = secrets.token_hex(8)
    body = b"%x\r\n%s\r\n0\r\nX-Checksum: abc\r\n\r\n" % (len(CREATE), CREATE)
    fields = ["Host: edge", f"Authorization: Bearer {key}", f"X-Probe: {marker}", CHUNKED]
    with connect(edge.edge_url) as sock:
        sock.sendall(request("POST", *fields, body=body))
        status, headers, answer = read_response(sock)
        assert_refused(status, headers, answer)
        assert "trailer" in json.loads(answer)["error"]["message"].lower()
        # The framing was sound: the connection still serves the next request.
        sock.sendall(request("GET", "Host: edge", f"Authorization: Bearer {key}"))
        assert read_response(sock)[0] == 200
    assert relayed(simulator, marker) == []


def test_http2_with_prior_knowledge_is_refused_in_http2(edge: Gateway) -> None:
    # `curl --http2-prior-knowledge` reads no HTTP/1 answer: it is told in HTTP/2 frames.
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.send_headers(
        1, [(":method", "GET"), (":path", TASKS), (":scheme", "http"), (":authority", "edge")]
    )
    with connect(edge.edge_url) as sock:
        sock.sendall(client.data_to_send())
        received = client.receive_data(read_until_closed(sock))
    (goaway,) = [e for e in received if isinstance(e, h2.events.ConnectionTerminated)]
    assert goaway.error_code == h2.errors.ErrorCodes.HTTP_1_1_REQUIRED
    assert goaway.last_stream_id == 0  # the request was not read, so never relayed
    assert b"HTTP/1.1 only" in goaway.additional_data


def test_a_head_trickled_byte_by_byte_is_closed_without_an_answer(edge: Gateway, key: str) -> None:
    with connect(edge.edge_url) as sock:
        sock.sendall(
            f"GET {TASKS} HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer {key}\r\n".encode()
        )
        assert closed_while_trickling(sock) == b""  # one more header byte every 0.2 s


@pytest.mark.parametrize(
    ("framing", "sent"),
    [
        (f"Content-Length: {len(CREATE)}", CREATE[:10]),  # fewer bytes than declared
        (CHUNKED, b"%x\r\n%s\r\n" % (len(CREATE), CREATE)),  # no last chunk
    ],
    ids=["content-length", "chunked"],
)
def test_a_body_that_stops_is_closed_without_an_answer(
    edge: Gateway, key: str, simulator: Simulator, framing: str, sent: bytes
) -> None:
    marker = secrets.token_hex(8)
    fields = ["Host: edge", f"Authorization: Bearer {key}", f"X-Probe: {marker}", framing]
    with connect(edge.edge_url) as sock:
        sock.sendall(request("POST", *fields, body=sent))
        assert read_until_closed(sock) == b""
    assert relayed(simulator, marker) == []


def test_an_idle_connection_is_closed_before_and_after_a_request(edge: Gateway, key: str) -> None:
    with connect(edge.edge_url) as silent:
        assert read_until_closed(silent) == b""
    with connect(edge.edge_url) as sock:
        sock.sendall(request("GET", "Host: edge", f"Authorization: Bearer {key}"))
        assert read_response(sock)[0] == 200
        assert read_until_closed(sock) == b""


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_upload_that_keeps_coming_is_never_cut(
    edge: Gateway, key: str, simulator: Simulator, chunked: bool
) -> None:
    marker = secrets.token_hex(8)
    framing = CHUNKED if chunked else f"Content-Length: {len(CREATE)}"
    fields = ["Host: edge", f"Authorization: Bearer {key}", f"X-Probe: {marker}", framing]
    pieces = [CREATE[i : i + 6] for i in range(0, len(CREATE), 6)]  # ~20 pieces, 0.25 s apart
    with connect(edge.edge_url) as sock:
        sock.sendall(request("POST", *fields))
        for piece in pieces:
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            time.sleep(0.25)  # pacing the upload, not waiting for anything
        if chunked:
            sock.sendall(b"0\r\n\r\n")
        status, _, answer = read_response(sock)
    assert status == 200, answer
    assert len(relayed(simulator, marker)) == 1


def test_a_slow_upstream_answer_is_not_cut(edge: Gateway, key: str, simulator: Simulator) -> None:
    simulator.configure(latency_ms=2500)  # longer than every client limit
    marker = secrets.token_hex(8)
    fields = ["Host: edge", f"Authorization: Bearer {key}", f"X-Probe: {marker}", LENGTH]
    with connect(edge.edge_url) as sock:
        sock.sendall(request("POST", *fields, body=CREATE))
        assert read_response(sock)[0] == 200
    assert len(relayed(simulator, marker)) == 1


def test_tls_handshakes_are_timed_and_clients_get_http11(
    simulator: Simulator, tmp_path: Path
) -> None:
    cert = tmp_path / "edge.pem"
    self_signed(cert)
    gw = Gateway(
        tmp_path / "gw", simulator.url, simulator.api_key, "--tls-cert", str(cert), env=LIMITS
    )
    try:
        # A ClientHello trickled one byte at a time: never idle, never finished.
        with connect(gw.edge_url) as sock:
            assert closed_while_trickling(sock, b"\x16") == b""
        context = ssl.create_default_context(cafile=str(cert))
        context.set_alpn_protocols(["h2", "http/1.1"])
        with context.wrap_socket(connect(gw.edge_url), server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() == "http/1.1"  # no HTTP/2 around the guard
            tls.sendall(
                request("POST", "Host: edge", "Content-Length: 1", CHUNKED, body=b"0\r\n\r\n")
            )
            assert_refused(*read_response(tls))
    finally:
        gw.stop()


def test_under_mitmdump_too(simulator: Simulator, tmp_path: Path) -> None:
    token = "nat_test_" + secrets.token_urlsafe(16)
    control = control_process(tmp_path / "control", token)
    mitmdump = None
    try:
        mitmdump = Process(
            [
                str(Path(sys.executable).parent / "mitmdump"),
                "-s",
                "addons/gateway.py",
                "--mode",
                f"reverse:{simulator.url}",
                "--listen-host",
                "127.0.0.1",
                "--listen-port",
                "0",
                "--set",
                "connection_strategy=lazy",
                "--set",
                f"nextapi_control_url={address(control, 'control')}",
                "--set",
                f"nextapi_data_dir={tmp_path / 'edge'}",
                "--set",
                "nextapi_request_header_timeout=1",
            ],
            env={"NEXTAPI_ADMIN_TOKEN": token, "NEXTAPI_UPSTREAM_KEY": simulator.api_key},
        )
        port = mitmdump.wait_for(r"listening at (\S+):(\d+)").group(2)
        url = f"http://127.0.0.1:{port}"
        with connect(url) as sock:
            sock.sendall(
                request("POST", "Host: edge", "Content-Length: 1", CHUNKED, body=b"0\r\n\r\n")
            )
            assert_refused(*read_response(sock))
        with connect(url) as sock:
            sock.sendall(f"GET {TASKS} HTTP/1.1\r\n".encode())
            assert closed_while_trickling(sock) == b""
    finally:
        if mitmdump is not None:
            mitmdump.stop()
        control.stop()


def test_under_workers_too(simulator: Simulator, tmp_path: Path) -> None:
    prefix = f"nextapi-test-{secrets.token_hex(4)}:"
    gw = Gateway(
        tmp_path / "gw",
        simulator.url,
        simulator.api_key,
        *("--workers", "2", "--redis-url", REDIS),
        env={**LIMITS, "NEXTAPI_REDIS_PREFIX": prefix},
    )
    try:
        for _ in range(8):  # new connections, which the kernel spreads over both workers
            with connect(gw.edge_url) as sock:
                sock.sendall(request("POST", "Host: edge", "Content-Length: 1", CHUNKED, body=b"0"))
                assert_refused(*read_response(sock))
        with connect(gw.edge_url) as sock:
            sock.sendall(f"GET {TASKS} HTTP/1.1\r\n".encode())
            assert closed_while_trickling(sock) == b""
    finally:
        gw.stop()
        client = redis.Redis.from_url(REDIS)
        for name in client.scan_iter(match=f"{prefix}*"):
            client.delete(name)
        client.close()


def test_mitmproxys_own_refusals_come_in_the_envelope_too(edge: Gateway, key: str) -> None:
    """A body declared past mitmproxy's own cap (four times max_body_bytes) is refused by
    mitmproxy before any addon sees it: in the envelope now, not its HTML page."""
    fields = ["Host: edge", f"Authorization: Bearer {key}", f"Content-Length: {2**30}"]
    with connect(edge.edge_url) as sock:
        sock.sendall(request("POST", *fields, body=CREATE))
        status, headers, body = read_response(sock)
    assert status == 413 and "server" not in headers
    assert headers["x-request-id"].startswith("req_")
    assert json.loads(body)["error"]["code"] == "RequestTooLarge"
