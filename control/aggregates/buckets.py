"""Time buckets of usage aggregates: hours, days and months in a time zone, over 15-minute
slots (every zone's offset is a multiple of 15 minutes, so a local bucket is whole slots).

SQL groups slots by their local time (`slot + offset`); the offset of each slot comes from the
zone's offset changes within the window, found with zoneinfo."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from control.store.database import Dialect

DAY = 86400


def _offset(zone: ZoneInfo, ts: float) -> int:
    offset = datetime.fromtimestamp(ts, zone).utcoffset()
    return int(offset.total_seconds()) if offset else 0


def offset_segments(zone: ZoneInfo, start: float, end: float) -> list[tuple[float, int]]:
    """[(from when, UTC offset in seconds)] over [start, end): where the zone's offset changes
    (found day by day, then to the second)."""
    segments = [(start, _offset(zone, start))]
    day = start
    while day < end:
        following = min(day + DAY, end)
        if _offset(zone, following) != segments[-1][1]:
            low, high = day, following  # the offset changes in (low, high]
            while high - low > 1:
                middle = (low + high) // 2
                if _offset(zone, middle) == segments[-1][1]:
                    low = middle
                else:
                    high = middle
            segments.append((high, _offset(zone, high)))
        day = following
    return segments


def _offset_sql(slot: str, segments: list[tuple[float, int]]) -> str:
    if len(segments) == 1:  # an expression, not a literal: GROUP BY 3600 means "column 3600"
        return f"CAST({segments[0][1]} AS INTEGER)"
    cases = " ".join(f"WHEN {slot} < {int(s)} THEN {o}" for (s, _), (_, o) in _pairs(segments))
    return f"(CASE {cases} ELSE {segments[-1][1]} END)"


def _pairs(segments: list[tuple[float, int]]) -> Iterable[tuple[tuple[float, int], tuple]]:
    """Each segment's offset with the start of the next."""
    return zip(segments[1:], segments[:-1], strict=True)


def time_key_sql(
    unit: str | None, slot: str, segments: list[tuple[float, int]], dialect: Dialect
) -> list[str]:
    """The SQL grouping a slot into its bucket (in local time: `slot + offset`)."""
    if unit is None:
        return []
    offset = _offset_sql(slot, segments)
    local = f"({slot} + {offset})"
    if unit == "hour":
        # The local hour's start in UTC: a local hour that happens twice (the clocks going
        # back) is two buckets, and the keys sort in time order (local hour and offset would
        # put the second of the two first: the offset is smaller after the change).
        return [f"({local} / 3600 * 3600 - {offset})"]
    if unit == "day":
        return [f"({local} / {DAY})"]
    return [dialect.month(local)]


def bucket_bounds(unit: str, key: tuple[Any, ...], zone: ZoneInfo) -> tuple[float, float]:
    """A bucket's [start, end) in UTC seconds, from its key."""
    if unit == "hour":
        return float(key[0]), float(key[0] + 3600)
    if unit == "day":
        date = datetime(1970, 1, 1) + timedelta(days=key[0])
        following = date + timedelta(days=1)
    else:
        year, month = (int(part) for part in key[0].split("-"))
        date = datetime(year, month, 1)
        following = datetime(year + month // 12, month % 12 + 1, 1)
    return _local_to_utc(date, zone), _local_to_utc(following, zone)


def _local_to_utc(naive: datetime, zone: ZoneInfo) -> float:
    return naive.replace(tzinfo=zone).astimezone(UTC).timestamp()
