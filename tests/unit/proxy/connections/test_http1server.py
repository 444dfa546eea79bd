"""The guarded HTTP/1 layer inside a real mitmproxy HttpLayer, and the parts of mitmproxy it
relies on: if one of these fails after a mitmproxy upgrade, re-read the changed code against
proxy/connections/http1server.py before anything else."""

from __future__ import annotations

import hashlib
import inspect
import json
import time
from collections.abc import Iterator
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import pytest
from mitmproxy import connection, http, version
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.proxy import commands, events, server
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.layers.http import HttpLayer, HTTPMode, _http1
from mitmproxy.proxy.layers.http._hooks import HttpRequestHeadersHook, HttpRequestHook
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import taddons

from addons.connections import Connections
from proxy.connections import http1server
from proxy.connections.http1server import GuardedHttp1Server, TimeLimits, install

LIMITS = TimeLimits(header=10.0, body=30.0, keepalive=75.0)
GET = b"GET /api/v3/contents/generations/tasks HTTP/1.1\r\nHost: edge\r\n\r\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(http1server, "monotonic", fake)
    return fake


@pytest.fixture
def options() -> Iterator[Any]:
    with taddons.context(Proxyserver(), Connections()) as tctx:
        yield tctx.options


def http_layer(options: Any, started: list[str] | None = None) -> HttpLayer:
    client = connection.Client(
        peername=("127.0.0.1", 50000),
        sockname=("127.0.0.1", 8080),
        timestamp_start=time.time(),
        state=connection.ConnectionState.OPEN,
        proxy_mode=ProxyMode.parse("reverse:http://127.0.0.1:9"),
    )
    context = Context(client, options)
    context.server.address = ("127.0.0.1", 9)
    layer = HttpLayer(context, HTTPMode.transparent)
    install(layer, LIMITS, lambda: (started if started is not None else []).append("started"))
    return layer


def play(layer: HttpLayer, event: events.Event) -> list[commands.Command]:
    """Feed `event`, completing every hook at once (the `request` hook answers 200, so that
    nothing goes upstream); every command that came out."""
    out: list[commands.Command] = []
    queue = [event]
    while queue:
        for command in layer.handle_event(queue.pop(0)):
            out.append(command)
            if isinstance(command, HttpRequestHook):
                command.flow.response = http.Response.make(200, b"ok")
            if isinstance(command, commands.StartHook) and command.blocking:
                queue.append(events.HookCompleted(command))
    return out


def sent(out: list[commands.Command]) -> bytes:
    return b"".join(c.data for c in out if isinstance(c, commands.SendData))


def closes(out: list[commands.Command]) -> bool:
    return any(isinstance(c, commands.CloseConnection) for c in out)


def test_the_http_layer_keeps_the_server_layer_put_there_before_its_start(options: Any) -> None:
    started: list[str] = []
    layer = http_layer(options, started)
    play(layer, events.Start())
    assert type(layer.connections[layer.context.client]) is GuardedHttp1Server
    assert started == ["started"]
    out = play(layer, events.DataReceived(layer.context.client, GET))
    assert any(isinstance(c, HttpRequestHeadersHook) for c in out)
    assert sent(out).startswith(b"HTTP/1.1 200 OK\r\n")
    assert not closes(out)


def test_a_refused_head_gets_the_envelope_and_the_connection_closes(options: Any) -> None:
    layer = http_layer(options)
    play(layer, events.Start())
    smuggled = (
        b"POST /api/v3/contents/generations/tasks HTTP/1.1\r\nHost: edge\r\n"
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    out = play(layer, events.DataReceived(layer.context.client, smuggled))
    assert not any(isinstance(c, commands.StartHook) for c in out)  # no flow at all
    head, _, body = sent(out).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"X-Request-Id: req_" in head and b"Server:" not in head
    assert json.loads(body)["error"]["code"] == "MalformedRequest"
    assert closes(out)


def test_an_http2_client_with_prior_knowledge_is_told_to_use_http11(options: Any) -> None:
    layer = http_layer(options)
    play(layer, events.Start())
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    out = play(layer, events.DataReceived(layer.context.client, preface))
    assert not any(isinstance(c, commands.StartHook) for c in out)
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    received = client.receive_data(sent(out))
    assert isinstance(received[0], h2.events.RemoteSettingsChanged)
    (goaway,) = [e for e in received if isinstance(e, h2.events.ConnectionTerminated)]
    assert goaway.error_code == h2.errors.ErrorCodes.HTTP_1_1_REQUIRED
    assert goaway.additional_data == b"This edge speaks HTTP/1.1 only."
    assert closes(out)


def test_a_trailer_section_reaches_the_flow_instead_of_raising(options: Any) -> None:
    layer = http_layer(options)
    play(layer, events.Start())
    chunked = (
        b"POST /x HTTP/1.1\r\nHost: edge\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\nX-Checksum: abc\r\n\r\n"
    )
    out = play(layer, events.DataReceived(layer.context.client, chunked))
    (hook,) = [c for c in out if isinstance(c, HttpRequestHook)]
    assert hook.flow.request.content == b"{}"
    assert hook.flow.request.trailers == http.Headers(x_checksum="abc")


def test_a_malformed_chunk_is_answered_with_the_flows_request_id(options: Any) -> None:
    layer = http_layer(options)
    play(layer, events.Start())
    out = play(
        layer,
        events.DataReceived(
            layer.context.client,
            b"POST /x HTTP/1.1\r\nHost: edge\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ),
    )
    head = sent(out).partition(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n") and closes(out)
    (hook,) = [c for c in out if isinstance(c, HttpRequestHeadersHook)]
    early = hook.flow.metadata[http1server.EARLY_REQUEST_ID]
    assert f"X-Request-Id: {early}".encode() in head


def test_wakeups_come_back_to_the_layer_that_asked(options: Any, clock: Clock) -> None:
    layer = http_layer(options)
    out = play(layer, events.Start())
    (wakeup,) = [c for c in out if isinstance(c, commands.RequestWakeup)]
    assert wakeup.delay == pytest.approx(LIMITS.header, abs=1)
    clock.now += LIMITS.header - 1
    early = play(layer, events.Wakeup(wakeup))
    assert not closes(early)  # not due yet: armed again for the rest
    (again,) = [c for c in early if isinstance(c, commands.RequestWakeup)]
    clock.now += 2
    assert closes(play(layer, events.Wakeup(again)))


def test_one_wakeup_stays_pending_across_requests(options: Any, clock: Clock) -> None:
    layer = http_layer(options)
    play(layer, events.Start())
    for _ in range(3):
        out = play(layer, events.DataReceived(layer.context.client, GET))
        assert sent(out).startswith(b"HTTP/1.1 200 OK\r\n")
        assert not any(isinstance(c, commands.RequestWakeup) for c in out)
        clock.now += 1


# What mitmproxy 12.2.3 looked like where the module reaches in: the methods it replaces or
# whose behaviour it relies on. A new mitmproxy that changes one of them fails here.
RELIED_ON = {
    # read_headers and read_body are replaced: a fix upstream must be ported.
    "Http1Server.read_headers": (_http1.Http1Server.read_headers, "3fe0945216bcf7bc"),
    "Http1Connection.read_body": (_http1.Http1Connection.read_body, "aece271029af36e4"),
    # send, mark_done and _handle_event are extended; start sets the first state.
    "Http1Server.send": (_http1.Http1Server.send, "cc218a1337c0f5cf"),
    "Http1Connection.mark_done": (_http1.Http1Connection.mark_done, "dc5ed395ce4f0763"),
    "Http1Server.mark_done": (_http1.Http1Server.mark_done, "94fd7ea388c88671"),
    "Http1Connection._handle_event": (_http1.Http1Connection._handle_event, "2ac8db3e43ae743f"),
    "Http1Connection.start": (_http1.Http1Connection.start, "888ce41383823cf2"),
    # The start keeps a server layer already in `connections`; wakeups go back to their layer.
    "HttpLayer._handle_event": (HttpLayer._handle_event, "6ba31883cc7a06b3"),
    "HttpLayer.event_to_child": (HttpLayer.event_to_child, "1095f6e1581d1780"),
    # addons/connections.py closes a connection the way mitmproxy's inactivity timeout does.
    "ConnectionHandler.on_timeout": (server.ConnectionHandler.on_timeout, "0d1e6b0aa6e41173"),
    # addons/connections.py closes a socket handle_connection can leave open when cancelled,
    # and writes an over-cap refusal to the client's writer before handle_client closes it.
    "ConnectionHandler.handle_connection": (
        server.ConnectionHandler.handle_connection,
        "95c3f93e9824e527",
    ),
    "ConnectionHandler.handle_client": (
        server.ConnectionHandler.handle_client,
        "01f1b7cc991c4711",
    ),
}


@pytest.mark.parametrize("name", RELIED_ON)
def test_the_mitmproxy_code_relied_on_is_what_it_was_checked_against(name: str) -> None:
    function, expected = RELIED_ON[name]
    digest = hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]
    assert digest == expected, (
        f"mitmproxy {version.VERSION} changed {name}: re-read it against "
        "proxy/connections/http1server.py (and addons/connections.py), then update the digest"
    )


def test_the_close_for_overdue_connections_is_there() -> None:
    assert inspect.iscoroutinefunction(server.ConnectionHandler.on_timeout)
    assert Proxyserver().connections == {}
