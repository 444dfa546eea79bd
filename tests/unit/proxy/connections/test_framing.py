"""The request heads the edge reads, and the ambiguous ones it refuses (RFC 9112)."""

from __future__ import annotations

import pytest

from proxy.connections.framing import HEAD_END, FramingError, split_head

GOOD = (
    b"POST /api/v3/contents/generations/tasks HTTP/1.1\r\n"
    b"Host: edge.example\r\n"
    b"Authorization: Bearer nk_test_x\r\n"
    b"Content-Length: 12\r\n"
    b"\r\n"
)


def head(*fields: bytes, request_line: bytes = b"POST /x HTTP/1.1") -> bytes:
    return b"\r\n".join([request_line, *fields]) + b"\r\n\r\n"


def test_a_plain_head_is_split_into_its_lines() -> None:
    assert split_head(GOOD) == [
        b"POST /api/v3/contents/generations/tasks HTTP/1.1",
        b"Host: edge.example",
        b"Authorization: Bearer nk_test_x",
        b"Content-Length: 12",
    ]


@pytest.mark.parametrize(
    "fields",
    [
        (b"Host: a", b"Transfer-Encoding: chunked"),
        (b"Host: a", b"transfer-encoding:\tChunked "),  # OWS and case are fine (RFC 9112 §7)
        (b"Host: a", b"Content-Length: 0"),
        (b"Host: a", b"X-Empty:", b"X-Obs-Text: caf\xc3\xa9"),
    ],
)
def test_well_framed_heads_pass(fields: tuple[bytes, ...]) -> None:
    assert split_head(head(*fields))[1:] == list(fields)


def test_http_10_needs_no_host() -> None:
    assert split_head(head(request_line=b"GET / HTTP/1.0")) == [b"GET / HTTP/1.0"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (head(b"Host: a", b"Content-Length: 5", b"Transfer-Encoding: chunked"), "both"),
        (head(b"Host: a", b"Content-Length: 5", b"Content-Length: 6"), "more than once"),
        (head(b"Host: a", b"Content-Length: 5", b"Content-Length: 5"), "more than once"),
        (head(b"Host: a", b"Content-Length: 5, 5"), "single decimal"),
        (head(b"Host: a", b"Content-Length: +5"), "single decimal"),
        (head(b"Host: a", b"Content-Length: 05"), "single decimal"),
        (head(b"Host: a", b"Content-Length: 0x5"), "single decimal"),
        (head(b"Host: a", b"Transfer-Encoding: chunked, identity"), "only Transfer-Encoding"),
        (head(b"Host: a", b"Transfer-Encoding: gzip, chunked"), "only Transfer-Encoding"),
        (head(b"Host: a", b"Transfer-Encoding: xchunked"), "only Transfer-Encoding"),
        (head(b"Host: a", b"Transfer-Encoding: chunked\x0b"), "control character"),
        (head(b"Host: a", b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"), "once"),
        (head(b"Host: a", b"Transfer-Encoding:", b" chunked"), "obs-fold"),
        (head(b"Host: a", b"Transfer-Encoding : chunked"), "malformed"),
        (head(b"Host: a", b" Transfer-Encoding: chunked"), "obs-fold"),
        (head(b"Transfer-Encoding: chunked", request_line=b"POST / HTTP/1.0"), "HTTP/1.0"),
        (b"GET / HTTP/1.1\nHost: a\n\n", "CRLF"),
        (b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", "CRLF"),
        (head(b"Host: a", b"X: a\rb"), "CRLF"),
        (head(b"Host: a", b"X: a\x00b"), "control character"),
        (head(b"Host: a", b"Host: b"), "exactly one Host"),
        (head(b"X: y"), "exactly one Host"),
        (head(b"Host: a", b": no name"), "malformed"),
        (head(b"Host: a", b"No-Colon"), "malformed"),
        (head(b"Host: a", request_line=b"GET  / HTTP/1.1"), "request line"),
        (head(b"Host: a", request_line=b"GET / HTTP/2.0"), "request line"),
        (head(b"Host: a", request_line=b"GET /\x01 HTTP/1.1"), "control character"),
        (head(b"Host: a", request_line=b"G(T / HTTP/1.1"), "request line"),
    ],
)
def test_ambiguous_heads_are_refused(raw: bytes, reason: str) -> None:
    with pytest.raises(FramingError, match=reason):
        split_head(raw)


def test_a_head_ends_at_its_first_empty_line_even_of_bare_lfs() -> None:
    # Delimited the way mitmproxy delimits it, so that a head of bare LFs is refused at once
    # instead of waiting for a CRLF CRLF that never comes.
    assert HEAD_END.search(b"GET / HTTP/1.1\nHost: a\n\nbody").end() == 24
    assert HEAD_END.search(GOOD).end() == len(GOOD)
