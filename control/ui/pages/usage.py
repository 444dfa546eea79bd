"""One org's usage tab: charts of requests per key and credits per model over a window (uPlot,
fed by `usage.json` from the usage aggregates), and the request log in that window, filtered by
key, status, model and route, paged."""

from __future__ import annotations

import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from control.aggregates import api as aggregates
from control.api import keys, usage
from control.http import bad_request, parse_time, rfc3339
from control.ui import web
from control.ui.filters import DAY, RANGES, unit_for
from control.ui.pages.org import org_header
from control.ui.sessions import Session
from control.ui.web import call, paged, render, signed_in

DEFAULT_RANGE = "24h"
LOG_FILTERS = ("key_id", "status", "model", "route")
# What an <input type="datetime-local"> sends: a wall time with no zone, taken as UTC here.
_WALL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?")


def as_rfc3339(value: str) -> str:
    """A bound of the window as the API reads it: a zone-less wall time is UTC; anything else
    goes to the API as it came, which refuses it (400) if it is no time."""
    return value + "Z" if _WALL_TIME.fullmatch(value) else value


class Window:
    """The window the tab shows: a preset (`range`) ending now, or custom `from`/`to` (either
    may be left out: the window then ends now, or spans a day). A bound that is no time is
    refused as the API refuses it (400, naming the field)."""

    def __init__(self, params: Any) -> None:
        self.raw_from = params.get("from", "").strip()
        self.raw_to = params.get("to", "").strip()
        self.custom = bool(self.raw_from or self.raw_to)
        chosen = params.get("range", DEFAULT_RANGE)
        self.chosen = "custom" if self.custom else (chosen if chosen in RANGES else DEFAULT_RANGE)
        now = time.time()
        if self.custom:
            self.end = parse_time(as_rfc3339(self.raw_to), "to") if self.raw_to else now
            self.start = (
                parse_time(as_rfc3339(self.raw_from), "from") if self.raw_from else self.end - DAY
            )
            if self.start >= self.end:
                raise bad_request("`from` must be before `to`.")
            self.unit = unit_for(self.end - self.start)
        else:
            seconds, self.unit = RANGES[self.chosen]
            self.start, self.end = now - seconds, now

    def bounds(self) -> dict[str, str]:
        """`from` and `to` for the API."""
        return {"from": rfc3339(self.start), "to": rfc3339(self.end)}

    def kept(self) -> dict[str, str]:
        """What links keep of the window (a preset stays relative to now)."""
        if self.custom:
            return {"from": self.raw_from, "to": self.raw_to}
        return {"range": self.chosen}


async def _keys_of(
    request: Request, session: Session, where: dict[str, str]
) -> list[dict[str, Any]]:
    """The org's keys (the first thousand), to name them in the filters and the chart."""
    found = await call(request, session, keys.list_keys, path_params=where, query={"limit": 1000})
    return list(found["items"])


@signed_in
async def usage_tab(request: Request, session: Session) -> Response:
    org_id = request.path_params["org"]
    where = {"org": org_id}
    params = request.query_params
    window = Window(params)
    header = await org_header(request, session, org_id)
    filters = {name: params.get(name, "").strip() for name in LOG_FILTERS}
    cursor, log = await paged(
        request,
        session,
        usage.list_requests,
        path_params=where,
        query={**filters, **window.bounds()},
    )
    org_keys = await _keys_of(request, session, where)
    kept = {**filters, **window.kept()}
    return render(
        request,
        "org_usage.html",
        session,
        **header,
        tab="usage",
        ranges=list(RANGES),
        window=window,
        filters=filters,
        kept=kept,
        csv_filters={**filters, **window.bounds()},
        keys=org_keys,
        log=log,
        cursor=cursor,
        chart_source=web.page_url(f"/ui/orgs/{org_id}/usage.json", **window.kept()),
    )


async def usage_data(request: Request) -> Response:
    """The tab's series for uPlot: requests per key and credits per model, a column per
    bucket of the window (zeros where a key or model had none)."""
    session = await web.session_of(request)
    if session is None:
        return JSONResponse({"error": "signed out"}, status_code=401)
    org_id = request.path_params["org"]
    where = {"org": org_id}
    window = Window(request.query_params)
    bounds = window.bounds()
    unit = window.unit
    names = {key["id"]: key["name"] for key in await _keys_of(request, session, where)}

    async def per_bucket(group_by: str) -> dict[str, Any]:
        query = bounds | {"interval": unit, "group_by": group_by, "percentiles": "false"}
        return await call(request, session, aggregates.org_usage, path_params=where, query=query)

    by_key, by_model = await per_bucket("key"), await per_bucket("model")
    start, end = web.timestamp(by_key["from"]), web.timestamp(by_key["to"])
    times = sorted({web.timestamp(row["start"]) for row in by_key["items"] + by_model["items"]})
    requests = _columns(times, by_key["items"], "key_id", "requests", 1)
    credits = _columns(times, by_model["items"], "model", "credits_charged", 1_000_000)
    return JSONResponse(
        {
            "unit": unit,
            "window": {"from": start, "to": end},
            "t": times,
            "requests_by_key": [
                {"label": _key_label(key_id, names), "data": data}
                for key_id, data in requests.items()
            ],
            "credits_by_model": [
                {"label": model or "(no model)", "data": data} for model, data in credits.items()
            ],
        }
    )


def _columns(
    times: list[float], rows: list[dict[str, Any]], group: str, figure: str, scale: int
) -> dict[str | None, list[float]]:
    """One column per group, aligned on `times` (uPlot wants every series as long as x)."""
    position = {t: n for n, t in enumerate(times)}
    columns: dict[str | None, list[float]] = {}
    for row in rows:
        column = columns.setdefault(row[group], [0] * len(times))
        column[position[web.timestamp(row["start"])]] += row[figure] / scale
    return columns


def _key_label(key_id: str | None, names: dict[str, str]) -> str:
    if key_id is None:
        return "(no key)"
    return f"{names[key_id]} ({key_id})" if key_id in names else key_id
