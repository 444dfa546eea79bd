"""HTTP range requests (RFC 9110 §14) for the videos the edge serves, so players can seek."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class Unsatisfiable(Exception):
    """A syntactically valid range that selects nothing of the file: 416."""


def parse_range(header: str | None, size: int, max_length: int) -> ByteRange | None:
    """The one range a `Range` header asks for, or None to send the whole file (no header, a
    header we do not understand, or several ranges: RFC 9110 lets a server ignore those).

    A range is answered with at most `max_length` bytes from its start (the Content-Range says
    which): players ask for the rest of the file and read on as they need it, and the edge
    holds each answer in memory."""
    if header is None:
        return None
    unit, sep, spec = header.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or last.isdigit()):
        return None
    if (first and not first.isdigit()) or (last and not last.isdigit()):
        return None
    if not first:  # a suffix: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        start, end = max(0, size - suffix), size - 1
    else:
        start, end = int(first), int(last) if last else size - 1
        if start >= size:
            raise Unsatisfiable
        if end < start:
            return None  # invalid: ignored, the whole file is sent
    return ByteRange(start, min(end, size - 1, start + max_length - 1))
