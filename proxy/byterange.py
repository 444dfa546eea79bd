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


def parse_range(header: str | None, size: int, open_ended_max: int) -> ByteRange | None:
    """The one range a `Range` header asks for, or None to send the whole file (no header, a
    header we do not understand, or several ranges: RFC 9110 lets a server ignore those).

    An open-ended range (`bytes=N-`) is answered with at most `open_ended_max` bytes: players
    ask for the rest of the file and then read on, and the edge keeps its answers in memory."""
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
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    if start >= size:
        raise Unsatisfiable
    if not last:
        return ByteRange(start, min(size - 1, start + open_ended_max - 1))
    end = int(last)
    if end < start:
        return None  # invalid: ignored, the whole file is sent
    return ByteRange(start, min(end, size - 1))
