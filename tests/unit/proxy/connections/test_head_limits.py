"""Request heads past their size limits are answered 431 while they arrive: a head without its end
is refused as soon as what was read passes the cap, never buffered past it."""

from __future__ import annotations

import json
from typing import Any

from mitmproxy.proxy import commands, events

from proxy.connections.http1server import GuardedHttp1Server, HeadLimits
from tests.unit.proxy.connections.test_http1server import closes, http_layer, options, play, sent

__all__ = ["options"]  # the fixture, used by name

LIMITS = HeadLimits()


def head_of(size: int) -> bytes:
    """A well-framed GET head of exactly `size` bytes (padded by one header)."""
    start = b"GET /x HTTP/1.1\r\nHost: edge\r\nX-Pad: "
    return start + b"a" * (size - len(start) - 4) + b"\r\n\r\n"


def feed(options: Any, *chunks: bytes) -> tuple[list[commands.Command], GuardedHttp1Server]:
    layer = http_layer(options)
    play(layer, events.Start())
    out: list[commands.Command] = []
    for chunk in chunks:
        out += play(layer, events.DataReceived(layer.context.client, chunk))
    guard = layer.connections[layer.context.client]
    assert isinstance(guard, GuardedHttp1Server)
    return out, guard


def assert_431(out: list[commands.Command]) -> dict[str, Any]:
    head, _, body = sent(out).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), head
    assert b"X-Request-Id: req_" in head and b"Connection: close" in head
    assert not any(isinstance(c, commands.StartHook) for c in out)  # no flow at all
    assert closes(out)
    error = json.loads(body)["error"]
    assert error["code"] == "RequestHeaderFieldsTooLarge"
    assert error["type"] == "RequestHeaderFieldsTooLarge"
    return error


def test_a_head_at_its_limit_passes(options: Any) -> None:
    out, _ = feed(options, head_of(LIMITS.head))
    assert sent(out).startswith(b"HTTP/1.1 200 OK\r\n") and not closes(out)


def test_a_head_one_byte_past_its_limit_is_refused(options: Any) -> None:
    error = assert_431(feed(options, head_of(LIMITS.head + 1))[0])
    assert "32768 bytes" in error["message"]


def test_a_head_without_its_end_is_refused_once_past_the_cap(options: Any) -> None:
    chunk = b"GET /x HTTP/1.1\r\nHost: edge\r\nX-Pad: " + b"a" * 8000
    out, guard = feed(options, chunk)
    assert not sent(out) and not closes(out)  # under the cap: still waiting for the end
    more = [b"a" * 8000] * 4  # past 32 KiB at the fourth
    out, guard = feed(options, chunk, *more)
    assert_431(out)
    assert not guard.head and not guard.buf  # nothing kept
    # Bytes that come after the refusal are not buffered either.
    out = list(guard.handle_event(events.DataReceived(guard.conn, b"a" * 65536)))
    assert not guard.head and not sent(out)


def test_a_request_line_at_its_limit_passes(options: Any) -> None:
    line = b"GET /" + b"a" * (LIMITS.request_line - len(b"GET / HTTP/1.1") - 0) + b" HTTP/1.1"
    assert len(line) == LIMITS.request_line
    out, _ = feed(options, line + b"\r\nHost: edge\r\n\r\n")
    assert sent(out).startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_long_request_line_is_refused_before_its_end(options: Any) -> None:
    out, _ = feed(options, b"GET /" + b"a" * LIMITS.request_line)  # no CRLF yet
    error = assert_431(out)
    assert "line is too long" in error["message"]


def test_a_long_request_line_is_refused_in_a_short_head(options: Any) -> None:
    line = b"GET /" + b"a" * (9 * 1024) + b" HTTP/1.1"
    assert_431(feed(options, line + b"\r\nHost: edge\r\n\r\n")[0])


def test_too_many_header_fields_are_refused(options: Any) -> None:
    fields = b"".join(b"X-F%d: 1\r\n" % i for i in range(LIMITS.fields - 1))
    ok, _ = feed(options, b"GET /x HTTP/1.1\r\nHost: edge\r\n" + fields + b"\r\n")
    assert sent(ok).startswith(b"HTTP/1.1 200 OK\r\n")  # Host and 99 more: 100
    over = b"GET /x HTTP/1.1\r\nHost: edge\r\n" + fields + b"X-Last: 1\r\n"
    error = assert_431(feed(options, over)[0])  # the 101st, before the head's end
    assert "too many header fields" in error["message"]


def test_the_limits_are_the_layers_own(options: Any) -> None:
    layer = http_layer(options)
    guard = layer.connections[layer.context.client]
    assert isinstance(guard, GuardedHttp1Server)
    guard.head_limits = HeadLimits(request_line=100, head=200, fields=3)
    play(layer, events.Start())
    out = play(layer, events.DataReceived(layer.context.client, head_of(201)))
    assert_431(out)
