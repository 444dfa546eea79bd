"""What an HTTP/1.x request head must look like for the edge to read it (RFC 9112).

The edge and whatever stands in front of it (a load balancer that reuses one connection for many
customers) must agree on where each request ends: a head that two HTTP implementations could
frame differently is how a request is smuggled past one of them. mitmproxy reads heads leniently
(a bare LF ends a line, obs-fold continues one, `Transfer-Encoding: gzip, chunked` is decoded),
so the edge checks every head first and refuses, with 400, each one that has more than one
reading:

- every line ends in CRLF: no bare LF, no CR that is not followed by LF (§2.2);
- the request line is `method SP target SP HTTP/1.0|HTTP/1.1`, single spaces (§3);
- no obs-fold (a header line starting with SP or HTAB, §5.2), no whitespace between a field name
  and its colon (§5.1), names are tokens, values hold no control character but HTAB (RFC 9110
  §5.5: CR, LF and NUL are "invalid and dangerous");
- exactly one Host in HTTP/1.1, at most one in HTTP/1.0 (§3.2);
- Transfer-Encoding at most once, only in HTTP/1.1, and only `chunked` (case aside, §7): a
  request's body is framed by chunked alone or not at all (§6.1), and codings the edge would
  have to undo (`gzip, chunked`) or cannot frame (`chunked, identity`) are refused;
- never both Transfer-Encoding and Content-Length (§6.1 allows rejecting it; a smuggler's
  favourite);
- Content-Length at most once, a plain decimal number (no sign, no leading zero, no list).
  Two equal ones (or `5, 5`) are refused too: §6.3 lets a recipient read identical values as one,
  but does not require it; no client the edge serves sends that, only a hop that duplicated a
  header does, and refusing keeps one rule with nothing to normalise before the relay.

Free of mitmproxy: the layer in `http1server.py` delimits the head and calls `split_head`.
"""

from __future__ import annotations

import re

# Where a head ends, as mitmproxy (and h11) delimit it: at the first empty line, even one made
# of bare LFs, so that a head using them is delimited, then refused, instead of waiting.
HEAD_END = re.compile(rb"\n\r?\n")

# An HTTP/2 client with prior knowledge opens with "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# (RFC 9113 §3.4): its first empty line ends what reads as a head.
HTTP2_PREFACE_START = b"PRI * HTTP/2.0\r\n\r\n"
HTTP_1_1_REQUIRED = 0xD  # RFC 9113 §7


def http2_refusal(message: bytes = b"This edge speaks HTTP/1.1 only.") -> bytes:
    """The frames that tell an HTTP/2 client to use HTTP/1.1: an empty SETTINGS (the server's
    connection preface), then GOAWAY with HTTP_1_1_REQUIRED and `message` as its debug data."""
    settings = bytes([0, 0, 0, 0x4, 0]) + bytes(4)
    payload = bytes(4) + HTTP_1_1_REQUIRED.to_bytes(4, "big") + message
    goaway = len(payload).to_bytes(3, "big") + bytes([0x7, 0]) + bytes(4) + payload
    return settings + goaway


_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_NAME = re.compile(_TOKEN)
_REQUEST_LINE = re.compile(rb"(%s) ([^\x00-\x20\x7f]+) HTTP/1\.([01])" % _TOKEN)
# Control characters but HTAB, CR and LF (those three are placed by the rules of lines).
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_DIGITS = re.compile(rb"0|[1-9][0-9]*")


class FramingError(ValueError):
    """Why a request head is refused: a sentence for the client."""


def split_head(head: bytes) -> list[bytes]:
    """The request line and the header lines of `head` (everything up to and including the
    empty line that HEAD_END found), without line ends; FramingError if it is ambiguous."""
    # Every CR and every LF belongs to a CRLF exactly when the three counts agree.
    if not head.count(b"\r") == head.count(b"\n") == head.count(b"\r\n"):
        raise FramingError("A line of the request head does not end in CRLF (a bare CR or LF).")
    if _CONTROL.search(head):
        raise FramingError("The request head holds a control character.")
    lines = head.split(b"\r\n")[:-2]
    if not lines or not (request_line := _REQUEST_LINE.fullmatch(lines[0])):
        raise FramingError(
            "The request line is malformed (it must be `METHOD target HTTP/1.1`, single spaces)."
        )
    http11 = request_line.group(3) == b"1"
    hosts = 0
    lengths: list[bytes] = []
    codings: list[bytes] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            raise FramingError("A header line starts with whitespace (obs-fold is not accepted).")
        name, colon, value = line.partition(b":")
        if not colon or not _NAME.fullmatch(name):
            raise FramingError(
                "A header line is malformed (it must be `Name: value`, the name a token "
                "followed by the colon directly)."
            )
        name = name.lower()
        if name == b"host":
            hosts += 1
        elif name == b"content-length":
            lengths.append(value.strip(b" \t"))
        elif name == b"transfer-encoding":
            codings.append(value.strip(b" \t"))
    if hosts > 1 or (http11 and hosts == 0):
        raise FramingError("An HTTP/1.1 request carries exactly one Host header.")
    if codings:
        if lengths:
            raise FramingError("A request cannot carry both Transfer-Encoding and Content-Length.")
        if len(codings) > 1:
            raise FramingError("Transfer-Encoding appears more than once.")
        if not http11:
            raise FramingError("Transfer-Encoding is not allowed in an HTTP/1.0 request.")
        if codings[0].lower() != b"chunked":
            raise FramingError("The only Transfer-Encoding accepted is `chunked`.")
    if len(lengths) > 1:
        raise FramingError("Content-Length appears more than once.")
    if lengths and not _DIGITS.fullmatch(lengths[0]):
        raise FramingError("Content-Length must be a single decimal number.")
    return lines
