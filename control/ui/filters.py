"""Filters the pages read from their query string: the preset time ranges of the charts, a
range of whole UTC days picked with date inputs, and text filters passed on to the API as they
are."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.requests import Request

from control.http import ApiError, rfc3339
from control.ui.sessions import Session
from control.ui.web import Handler, paged

MAX_DAYS = 400  # a custom range of the overview (the API itself takes any range)
DAY = 86400
# The charts' preset ranges: how far back, and the bucket each point stands for.
RANGES = {"24h": (DAY, "hour"), "7d": (7 * DAY, "hour"), "30d": (30 * DAY, "day")}
RANGES["90d"] = (90 * DAY, "day")
HOURLY_UP_TO_DAYS = 7  # a custom range longer than this is drawn by day


def unit_for(seconds: float) -> str:
    """The chart bucket of a custom range this long."""
    return "hour" if seconds <= HOURLY_UP_TO_DAYS * DAY else "day"


@dataclass(frozen=True, slots=True)
class DayRange:
    """`from`..`to` as the page shows them (dates, `to` included) and as the API takes them
    (RFC 3339, `to` exclusive: the day after the last one, 00:00 UTC)."""

    first: str  # YYYY-MM-DD, or ""
    last: str
    start: str | None  # RFC 3339
    end: str | None

    @property
    def query(self) -> dict[str, str]:
        return {k: v for k, v in (("from", self.start), ("to", self.end)) if v is not None}


class BadFilter(ValueError):
    """A filter the viewer typed that cannot be used; the message says why, in words."""


def _day(value: str, what: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
    except ValueError:
        raise BadFilter(f"The {what} date must be a date such as 2026-01-31.") from None


def day_range(params: Mapping[str, str], *, required: bool = False) -> DayRange:
    """The range of the `from` and `to` dates (either may be left empty unless `required`);
    raises BadFilter when they do not make a range."""
    first, last = params.get("from", "").strip(), params.get("to", "").strip()
    if required and not (first and last):
        raise BadFilter("Pick both a start date and an end date.")
    start = _day(first, "start") if first else None
    end = _day(last, "end") + timedelta(days=1) if last else None
    if start is not None and end is not None:
        if end <= start:
            raise BadFilter("The end date must be on or after the start date.")
        if (end - start).days > MAX_DAYS:
            raise BadFilter(f"A range may span at most {MAX_DAYS} days.")
    return DayRange(
        first,
        last,
        rfc3339(start.timestamp()) if start else None,
        rfc3339(end.timestamp()) if end else None,
    )


def texts(params: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    """The text filters the viewer filled in, trimmed (empty ones left out)."""
    return {name: params[name].strip() for name in names if params.get(name, "").strip()}


async def filtered_list(
    request: Request, session: Session, handler: Handler, filters: tuple[str, ...]
) -> dict[str, Any]:
    """One page of an API list filtered by the request's text filters and from/to days, as a
    template wants it: `found` (the page), `cursor`, `shown` (what the form and the pager
    keep), `api` (the filters as the API takes them, for the CSV link) and `problem` (a bad
    filter, in the form's or the API's own words; the list is then empty)."""
    params = request.query_params
    cursor = params.get("cursor")  # kept for the pager even when a filter is refused
    shown = texts(params, filters)
    shown |= {k: params.get(k, "").strip() for k in ("from", "to") if params.get(k, "").strip()}
    found: dict[str, Any] = {"items": [], "next_cursor": None}
    problem = None
    api: dict[str, str] = {}
    try:
        api = texts(params, filters) | day_range(params).query
        _, found = await paged(request, session, handler, query=api)
    except BadFilter as exc:
        problem = str(exc)
    except ApiError as exc:
        if exc.status != 400:
            raise
        problem = exc.message  # the API's own words for the bad filter
    return {"found": found, "cursor": cursor, "shown": shown, "api": api, "problem": problem}
