"""mitmproxy's HTTP/1 server layer with the edge's framing rules and time limits.

A patch of mitmproxy internals, kept to this module: checked against mitmproxy 12.2.3
(`mitmproxy/proxy/layers/http/_http1.py`); tests/unit/proxy/connections/test_http1server.py
fails if the parts it relies on or replaces change. Everything else of the edge reaches
mitmproxy through options, addons and hooks.

`GuardedHttp1Server` is mitmproxy's `Http1Server` (one per client connection) with:

- `read_headers` replaced: the head is delimited here and checked by `framing.split_head` before
  mitmproxy's own parser reads it; a refused head is answered 400 in the edge's error envelope
  and the connection closed. (mitmproxy accepted bare LF and CR, obs-fold, several or no Host,
  `Transfer-Encoding: gzip, chunked`, and answered the rest with its own HTML page.)
- `read_body` replaced: a trailer section becomes mitmproxy's `RequestTrailers` event (the flow's
  `request.trailers`, which addons/edge.py refuses) where mitmproxy raised NotImplementedError and
  left the connection open with no answer; a malformed chunked body is answered 400 where
  mitmproxy closed the connection without one.
- `send`: mitmproxy's own error answers (413 past `body_size_limit`, …) in the envelope.
- time limits, by mitmproxy's `RequestWakeup` (one timer pending per connection, re-armed
  lazily): a request head must be complete `header` seconds after its first byte (the
  connection's first head: after the connection opened, TLS handshake included); a body may
  pause at most `body` seconds; a connection idle between requests is closed after `keepalive`.
  Each closes the connection without an answer (an unfinished body also ends its flow, which
  the usage record then shows as 499, the client gone). While the edge works on a request
  (hooks, the upstream call) no limit runs.

mitmproxy's `HttpLayer` creates the server layer on its start with
`connections.setdefault(client, Http1Server(...))` (so that client replay can supply one):
`install` puts a guarded one there first. Without TLS there is no other protocol; with TLS the
client must not be able to negotiate h2, so the edge runs with mitmproxy's `http2` off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import h11
from mitmproxy import http
from mitmproxy.connection import ConnectionState
from mitmproxy.net.http import http1
from mitmproxy.proxy import commands, events
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.layers.http import (
    ErrorCode,
    Http1Server,
    HttpLayer,
    ReceiveHttp,
    RequestData,
    RequestEndOfMessage,
    RequestHeaders,
    RequestProtocolError,
    RequestTrailers,
    ResponseProtocolError,
)
from mitmproxy.proxy.layers.http._http1 import make_body_reader

from proxy.connections import framing
from proxy.context import METADATA_KEY, RequestContext, new_request_id
from proxy.errors import EdgeError, upstream_unavailable

log = logging.getLogger(__name__)

Commands = Iterator[commands.Command]

# A request id chosen here, for an answer sent before addons/edge.py gave the flow its own:
# the Edge addon adopts it, so the answer and the usage record name the same request.
EARLY_REQUEST_ID = "nextapi.early_request_id"

monotonic = time.monotonic  # the layer's clock (tests move it)


def malformed(message: str) -> EdgeError:
    return EdgeError(400, "MalformedRequest", message)


# mitmproxy's own refusals (ErrorCode.http_status_code), in the envelope: its messages name
# options and internals, so each status gets the edge's sentence instead.
_PROXY_ERRORS = {
    400: malformed("The request is malformed."),
    413: EdgeError(413, "RequestTooLarge", "The request body is too large."),
    502: upstream_unavailable(),
}


@dataclass(frozen=True, slots=True)
class HeadLimits:
    """How large a request head may be (nginx's 8 KiB line and 32 KiB head; Apache's 100
    fields): checked while it arrives, so that a head without its end is never buffered past."""

    request_line: int = 8 * 1024  # bytes, without its CRLF
    head: int = 32 * 1024  # bytes, request line and header lines with their CRLFs
    fields: int = 100  # header lines


def head_too_large(what: str) -> EdgeError:
    return EdgeError(431, "RequestHeaderFieldsTooLarge", f"The request {what}.")


@dataclass(frozen=True, slots=True)
class TimeLimits:
    header: float  # a request head, from its first byte (a connection's first: from its start)
    body: float  # the longest pause inside a request body
    keepalive: float  # a connection idle between requests


def error_response(error: EdgeError, request_id: str) -> bytes:
    """The raw HTTP/1.1 answer for `error`, closing the connection."""
    headers = error.response_headers(request_id) | {"Connection": "close"}
    return http1.assemble_response(http.Response.make(error.status, error.body(), headers))


def install(
    layer: HttpLayer,
    limits: TimeLimits,
    on_start: Callable[[], None],
    head_limits: HeadLimits = HeadLimits(),
) -> None:
    """Make `layer` (not started yet) read its client through a GuardedHttp1Server."""
    client = layer.context.client
    if client not in layer.connections:
        layer.connections[client] = GuardedHttp1Server(
            layer.context.fork(), layer, limits, on_start, head_limits
        )


class GuardedHttp1Server(Http1Server):
    def __init__(
        self,
        context: Context,
        http_layer: HttpLayer,
        limits: TimeLimits,
        on_start: Callable[[], None],
        head_limits: HeadLimits = HeadLimits(),
    ) -> None:
        super().__init__(context)
        self.http_layer = http_layer
        self.limits = limits
        self.head_limits = head_limits
        self.on_start = on_start
        self.head = bytearray()  # the request head read so far (moved out of mitmproxy's buf)
        self.head_searched = 0  # how much of it HEAD_END has already looked at
        self.head_started: float | None = None  # when its first byte came
        self.idle_since = 0.0  # when the last answer went out
        self.body_progress = 0.0  # when the body's last bytes came
        self.timers: dict[commands.RequestWakeup, float] = {}  # pending wakeups: when due

    # --- time limits -------------------------------------------------------------------------

    def start(self, _: events.Event) -> Commands:
        self.state = self.read_headers
        self.on_start()  # the addon's own deadline (before any HTTP) ends here
        # The first head is due `header` seconds after the connection opened, TLS included.
        opened_ago = max(0.0, time.time() - self.context.client.timestamp_start)
        self.head_started = monotonic() - opened_ago
        yield from self.arm(self.head_started + self.limits.header)

    state = start

    def arm(self, due: float) -> Commands:
        """A wakeup by `due`, unless one is pending already by then (it re-arms when it fires)."""
        if self.timers and min(self.timers.values()) <= due:
            return
        wakeup = commands.RequestWakeup(max(0.0, due - monotonic()))
        self.timers[wakeup] = due
        yield wakeup

    def _handle_event(self, event: events.Event) -> Commands:
        if isinstance(event, events.Wakeup):
            yield from self.woken(event)
        else:
            yield from super()._handle_event(event)

    def woken(self, event: events.Wakeup) -> Commands:
        self.timers.pop(event.command, None)
        if self.state == self.read_headers:
            if self.head_started is not None:
                due, what = self.head_started + self.limits.header, "request head"
            else:
                due, what = self.idle_since + self.limits.keepalive, "idle connection"
        elif self.state == self.read_body:
            due, what = self.body_progress + self.limits.body, "request body"
        else:
            return  # the edge is answering (no limit), or the connection is done
        if monotonic() < due:
            yield from self.arm(due)
            return
        log.debug("closing a client connection: %s past its time limit", what)
        yield commands.CloseConnection(self.conn)
        was_reading_body = self.state == self.read_body
        self.state = self.done
        if was_reading_body:
            yield ReceiveHttp(
                RequestProtocolError(
                    self.stream_id,
                    "request body not received in time",
                    ErrorCode.GENERIC_CLIENT_ERROR,
                )
            )

    # --- the request head --------------------------------------------------------------------

    def read_headers(self, event: events.ConnectionEvent) -> Commands:
        if isinstance(event, events.ConnectionClosed):
            self.head.clear()  # (mitmproxy logs an unfinished head; it may hold a key)
            yield commands.CloseConnection(self.conn)
            return
        if self.buf:
            self.head += self.buf.maybe_extract_at_most(len(self.buf)) or b""
        if not self.head_searched:
            # Empty lines before a request line are ignored (RFC 9112 §2.2).
            while self.head.startswith(b"\r\n"):
                del self.head[:2]
        if not self.head:
            return
        if self.head_started is None:
            self.head_started = monotonic()
            yield from self.arm(self.head_started + self.limits.header)
        found = framing.HEAD_END.search(self.head, self.head_searched)
        # mitmproxy's buffer is emptied into `head` on every read, so `head` grows by one read
        # (at most 64 KiB) at a time: checked here, it never holds much past the cap.
        if too_large := self.oversized(found.end() if found else None):
            yield from self.refuse_head(too_large)
            return
        if found is None:
            self.head_searched = max(0, len(self.head) - 2)
            return
        raw = bytes(self.head[: found.end()])
        if raw == framing.HTTP2_PREFACE_START:
            yield from self.refuse_http2()
            return
        rest = self.head[found.end() :]
        self.head = bytearray()
        self.head_searched = 0
        self.head_started = None
        if rest:
            self.buf += rest
        try:
            lines = framing.split_head(raw)
            self.request = http1.read_request_head(lines)
            body_size = http1.expected_http_body_size(self.request)
        except ValueError as exc:  # FramingError, or mitmproxy's parser
            # mitmproxy's messages quote the client's bytes: neither logged nor sent back.
            message = str(exc) if isinstance(exc, framing.FramingError) else "Malformed request."
            request_id = new_request_id()
            log.info("refused a malformed request head (%s): %s", request_id, message)
            yield commands.SendData(self.conn, error_response(malformed(message), request_id))
            yield commands.CloseConnection(self.conn)
            self.state = self.done
            return
        # What follows is mitmproxy's own read_headers.
        yield ReceiveHttp(RequestHeaders(self.stream_id, self.request, body_size == 0))
        self.body_reader = make_body_reader(body_size)
        self.state = self.read_body
        self.body_progress = monotonic()
        yield from self.arm(self.body_progress + self.limits.body)
        yield from self.state(event)

    def oversized(self, head_end: int | None) -> str | None:
        """What of the head read so far is past its limits (`head_end`: where it ends, if
        found), as the end of a sentence; None if nothing is."""
        limits = self.head_limits
        size = len(self.head) if head_end is None else head_end
        # The request line's LF, if it is short enough (its CRLF not counted).
        line_end = self.head.find(b"\n", 0, limits.request_line + 2)
        if line_end < 0:
            too_long = size >= limits.request_line + 2
        else:
            too_long = line_end - self.head.startswith(b"\r", line_end - 1) > limits.request_line
        if too_long:
            return f"line is too long (at most {limits.request_line} bytes)"
        if size > limits.head:
            return f"head is too large (at most {limits.head} bytes)"
        # Header lines so far: every LF ends one but the request line's (and the empty line's).
        fields = self.head.count(b"\n", 0, size) - (1 if head_end is None else 2)
        if fields > limits.fields:
            return f"head has too many header fields (at most {limits.fields})"
        return None

    def refuse_http2(self) -> Commands:
        """An HTTP/2 client with prior knowledge (`curl --http2-prior-knowledge`) cannot read an
        HTTP/1 answer: it is told in its own protocol, as RFC 9113 §9.1 lets a server that
        wants HTTP/1.1 (its SETTINGS, then GOAWAY with HTTP_1_1_REQUIRED and a sentence)."""
        self.head = bytearray()
        log.info("refused an HTTP/2 connection: the edge speaks HTTP/1.1 only")
        yield commands.SendData(self.conn, framing.http2_refusal())
        yield commands.CloseConnection(self.conn)
        self.state = self.done

    def refuse_head(self, too_large: str) -> Commands:
        self.head = bytearray()
        request_id = new_request_id()
        log.info("refused a request head (%s): %s", request_id, too_large)
        yield commands.SendData(self.conn, error_response(head_too_large(too_large), request_id))
        yield commands.CloseConnection(self.conn)
        self.state = self.done

    # --- the request body: mitmproxy's read_body, with trailers and an answer to bad framing --

    def read_body(self, event: events.Event) -> Commands:
        if isinstance(event, events.DataReceived):
            self.body_progress = monotonic()
        while True:
            try:
                if isinstance(event, events.DataReceived):
                    h11_event = self.body_reader(self.buf)
                elif isinstance(event, events.ConnectionClosed):
                    h11_event = self.body_reader.read_eof()
                else:
                    raise AssertionError(f"Unexpected event: {event}")
            except h11.ProtocolError as exc:
                if isinstance(event, events.DataReceived):
                    error = malformed("The chunked request body is malformed.")
                    yield commands.SendData(self.conn, error_response(error, self.request_id()))
                yield commands.CloseConnection(self.conn)
                self.state = self.done
                yield ReceiveHttp(
                    RequestProtocolError(
                        self.stream_id,
                        f"HTTP/1 protocol error: {exc}",
                        code=ErrorCode.GENERIC_CLIENT_ERROR,
                    )
                )
                return
            if h11_event is None:
                return
            if isinstance(h11_event, h11.Data):
                if data := bytes(h11_event.data):
                    yield ReceiveHttp(RequestData(self.stream_id, data))
            elif isinstance(h11_event, h11.EndOfMessage):
                if h11_event.headers:
                    trailers = http.Headers(list(h11_event.headers))
                    yield ReceiveHttp(RequestTrailers(self.stream_id, trailers))
                assert self.request is not None
                if self.request.data.method.upper() != b"CONNECT":
                    yield ReceiveHttp(RequestEndOfMessage(self.stream_id))
                yield from self.mark_done(request=True)
                return

    def mark_done(self, *, request: bool = False, response: bool = False) -> Commands:
        yield from super().mark_done(request=request, response=response)
        if response and self.state == self.read_headers and self.head_started is None:
            self.idle_since = monotonic()
            yield from self.arm(self.idle_since + self.limits.keepalive)

    # --- mitmproxy's own refusals ------------------------------------------------------------

    def send(self, event: Any) -> Commands:
        if not isinstance(event, ResponseProtocolError):
            yield from super().send(event)
            return
        if not (self.conn.state & ConnectionState.CAN_WRITE):
            return
        status = event.code.http_status_code()
        if self.response is None and status is not None:
            error = _PROXY_ERRORS.get(status) or EdgeError(status, "Error", "The request failed.")
            yield commands.SendData(self.conn, error_response(error, self.request_id()))
        yield commands.CloseConnection(self.conn)

    def request_id(self) -> str:
        """The current flow's request id, or one the Edge addon will adopt for it."""
        stream = self.http_layer.streams.get(self.stream_id)
        flow = getattr(stream, "flow", None)
        if flow is None:
            return new_request_id()
        rctx = flow.metadata.get(METADATA_KEY)
        if isinstance(rctx, RequestContext):
            return rctx.request_id
        return flow.metadata.setdefault(EARLY_REQUEST_ID, new_request_id())
