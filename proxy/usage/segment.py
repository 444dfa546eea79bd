"""The usage spool's segment files: how a record is framed (`encode_record`) and read back
(`read_segment`). The spool (proxy/usage/spool.py) writes them; the ingestor
(proxy/usage/ingest.py) reads them.

Segment file: the 8-byte magic `NXSPOOL1`, then one frame per record:

    u32 little-endian payload length | u32 little-endian crc32(length bytes + payload) | payload

where the payload is a msgpack map. `read_segment` stops at the first frame that is short, has an
implausible length (0 or > 1 MiB, which also covers zero-filled tails) or a bad crc: a torn last
write (kill -9, power loss) loses only that write. After a failed write or fsync the writer never
touches the file again (it seals it and rewrites the batch into a new segment), so a torn frame
can only ever be the tail of a file.
"""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack

log = logging.getLogger(__name__)

MAGIC = b"NXSPOOL1"
MAX_RECORD_BYTES = 1 << 20
SEGMENT_SUFFIX = ".seg"
_HEADER = struct.Struct("<II")


def encode_record(record: dict[str, Any]) -> bytes:
    """One frame: header + msgpack payload. Raises TypeError/ValueError for unencodable records."""
    payload = msgpack.packb(record, use_bin_type=True)
    length = len(payload)
    if length > MAX_RECORD_BYTES:
        raise ValueError(f"usage record too large ({length} bytes)")
    crc = zlib.crc32(payload, zlib.crc32(length.to_bytes(4, "little")))
    return _HEADER.pack(length, crc) + payload


def read_segment(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the records of one segment, in order, stopping cleanly at a torn or corrupt tail."""
    with open(path, "rb") as f:
        data = memoryview(f.read())
    end = len(data)
    if end < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        if end:
            log.warning("usage spool: %s has no valid segment header, ignoring it", path.name)
        return
    pos = len(MAGIC)
    while end - pos >= _HEADER.size:
        length, crc = _HEADER.unpack_from(data, pos)
        start = pos + _HEADER.size
        if length == 0 or length > MAX_RECORD_BYTES or start + length > end:
            break
        payload = data[start : start + length]
        if zlib.crc32(payload, zlib.crc32(data[pos : pos + 4])) != crc:
            break
        try:
            record = msgpack.unpackb(payload, raw=False)
        except Exception:
            break
        if not isinstance(record, dict):
            break
        pos = start + length
        yield record
    if pos < end:
        log.warning(
            "usage spool: %s: ignoring %d bytes of torn or corrupt tail at offset %d",
            path.name,
            end - pos,
            pos,
        )
