"""CSV out of the admin lists (`?format=csv` or `Accept: text/csv`): RFC 4180 with a header row,
streamed a page at a time (never built whole in memory), times in UTC named so (`ts_utc`), and
safe to open in a spreadsheet (a text cell starting with = + - @, tab or CR gets a leading `'`
so that it is never run as a formula)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from control.http import bad_request

MEDIA_TYPE = "text/csv; charset=utf-8; header=present"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TIME_FIELDS = {"ts", "start", "end", "previous_secret_valid_until"}

type Page = dict[str, Any]  # {"items": [...], "next_cursor": str | None}
type PageReader = Callable[[str | None], Awaitable[Page]]


def wants_csv(request: Request) -> bool:
    """`?format=csv` (or `json`) decides; otherwise an `Accept` that names text/csv."""
    chosen = request.query_params.get("format")
    if chosen is not None:
        if chosen not in ("json", "csv"):
            raise bad_request("`format` must be `json` or `csv`.")
        return chosen == "csv"
    accept = request.headers.get("accept", "")
    return any(part.split(";")[0].strip() == "text/csv" for part in accept.split(","))


def header(field: str) -> str:
    """A column's name: times carry their zone."""
    return f"{field}_utc" if field in TIME_FIELDS or field.endswith("_at") else field


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    if not isinstance(value, str):
        value = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _line(values: Iterable[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)  # RFC 4180: CRLF, quoting
    return buffer.getvalue()


async def _rows(columns: list[str], items: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    yield _line(header(c) for c in columns)
    async for item in items:
        yield _line(cell(item.get(c)) for c in columns)


def response(
    columns: list[str], items: AsyncIterator[dict[str, Any]], name: str
) -> StreamingResponse:
    return StreamingResponse(
        _rows(columns, items),
        media_type=MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


async def paged(first: Page, read: PageReader) -> AsyncIterator[dict[str, Any]]:
    """Every item from `first` on, reading each next page only when the previous is sent."""
    page = first
    while True:
        for item in page["items"]:
            yield item
        if not page.get("next_cursor"):
            return
        page = await read(page["next_cursor"])


async def listed(items: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for item in items:
        yield item


async def stream_pages(
    request: Request, columns: list[str], read: PageReader, name: str
) -> StreamingResponse:
    """The CSV of a paged list from the request's cursor on. The first page is read before
    the answer starts, so that a bad parameter is still a 400 in the error envelope."""
    first = await read(request.query_params.get("cursor"))
    return response(columns, paged(first, read), name)


async def page_or_csv(
    request: Request, csv: bool, columns: list[str], read: PageReader, name: str
) -> Response:
    """A list's answer: with `csv` (the handler's `wants_csv`, asked before its other checks so
    that a bad `format` is the first refusal) every page as CSV, else the page at the cursor."""
    if csv:
        return await stream_pages(request, columns, read, name)
    return JSONResponse(await read(request.query_params.get("cursor")))
